//! The `run` command: starts a server and a client process per run, pinned
//! with `taskset`, interleaves the systems cell by cell, samples `/proc`
//! and the write counter around the measured window, and collects the
//! runs for [`crate::report`].

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::alloc::AllocCounters;
use crate::child::ChildProc;
use crate::load::{ClientReport, Timing};
use crate::machine::Machine;
use crate::procfs;
use crate::syscalls::WriteCounter;
use crate::systems::{Runtime, System};

/// Where the two processes of a run are placed, and on which runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Short name: `split` (one core each, one worker), `split-current-thread`,
    /// `multi-2` (two workers each), `shared` (one core for both), or
    /// `unpinned`.
    pub name: String,
    /// `taskset -c` list of the server, `None` when unpinned.
    pub server_cpus: Option<String>,
    /// `taskset -c` list of the client, `None` when unpinned.
    pub client_cpus: Option<String>,
    /// The CPUs neither process runs on: the orchestrator and perf are
    /// pinned there. `None` when there are none (a 2-core machine, split).
    pub spare_cpus: Option<String>,
    /// The tokio runtime of both processes.
    pub runtime: Runtime,
}

/// `[0, 1, 2]` as `0,1,2`; `None` for an empty list.
fn cpu_list(ids: &[usize]) -> Option<String> {
    (!ids.is_empty()).then(|| {
        ids.iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    })
}

impl Placement {
    /// Server and client on a core each (the first two allowed CPUs), one
    /// tokio worker each, or unpinned if there is no taskset or only one
    /// CPU.
    pub fn split(machine: &Machine) -> Placement {
        let ids = machine.cpu_ids();
        if machine.taskset && ids.len() >= 2 {
            Placement {
                name: "split".to_owned(),
                server_cpus: cpu_list(&ids[..1]),
                client_cpus: cpu_list(&ids[1..2]),
                spare_cpus: cpu_list(&ids[2..]),
                runtime: Runtime::MultiThread(1),
            }
        } else {
            Placement {
                name: "unpinned".to_owned(),
                server_cpus: None,
                client_cpus: None,
                spare_cpus: None,
                runtime: Runtime::MultiThread(1),
            }
        }
    }

    /// As [`Placement::split`], with current-thread runtimes.
    pub fn split_current_thread(machine: &Machine) -> Placement {
        let split = Placement::split(machine);
        Placement {
            name: format!("{}-current-thread", split.name),
            runtime: Runtime::CurrentThread,
            ..split
        }
    }

    /// Two tokio workers each: on two cores each where there are four,
    /// else both processes on the first two cores (four workers on two
    /// cores), if taskset is there.
    pub fn multi_2(machine: &Machine) -> Option<Placement> {
        let ids = machine.cpu_ids();
        if !machine.taskset || ids.len() < 2 {
            return None;
        }
        let (server, client, spare) = if ids.len() >= 4 {
            (&ids[..2], &ids[2..4], &ids[4..])
        } else {
            (&ids[..2], &ids[..2], &ids[2..])
        };
        Some(Placement {
            name: "multi-2".to_owned(),
            server_cpus: cpu_list(server),
            client_cpus: cpu_list(client),
            spare_cpus: cpu_list(spare),
            runtime: Runtime::MultiThread(2),
        })
    }

    /// Server and client on the same core, if taskset is there.
    pub fn shared(machine: &Machine) -> Option<Placement> {
        let ids = machine.cpu_ids();
        let first = *ids.first()?;
        machine.taskset.then(|| Placement {
            name: "shared".to_owned(),
            server_cpus: Some(first.to_string()),
            client_cpus: Some(first.to_string()),
            spare_cpus: cpu_list(&ids[1..]),
            runtime: Runtime::MultiThread(1),
        })
    }

    /// Whether `system` runs in this placement: the blocking floor has no
    /// runtime (it runs only where the runtime is the default one), and the
    /// baseline build has no `--current-thread`.
    pub fn runs(&self, system: System) -> bool {
        match self.runtime {
            Runtime::MultiThread(1) => true,
            Runtime::MultiThread(_) => system.uses_tokio(),
            Runtime::CurrentThread => system.uses_tokio() && system.of_baseline().is_none(),
        }
    }

    /// E.g. "server on cpu0, client on cpu1; tokio multi-thread, 1 worker
    /// each; orchestrator and perf on cpu2".
    pub fn describe(&self) -> String {
        let cpu = |c: &Option<String>| {
            c.as_ref()
                .map_or("any cpu (unpinned)".to_owned(), |c| format!("cpu{c}"))
        };
        let spare = match &self.spare_cpus {
            Some(c) => format!("orchestrator and perf on cpu{c}"),
            None => "no spare core for the orchestrator and perf".to_owned(),
        };
        format!(
            "server on {}, client on {}; tokio {} each; {spare}",
            cpu(&self.server_cpus),
            cpu(&self.client_cpus),
            self.runtime.label(),
        )
    }
}

/// Everything a `run` does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Systems, interleaved in this order.
    pub systems: Vec<System>,
    /// Calls in flight.
    pub concurrency: Vec<usize>,
    /// Runs per cell.
    pub repeats: usize,
    /// Warm-up and window of each run.
    pub timing: Timing,
    /// Warm-up and window of each run of the writes pass.
    pub writes_timing: Timing,
    /// Placements, with the payloads each one runs.
    pub placements: Vec<(Placement, Vec<usize>)>,
    /// The placements whose cells get a separate writes pass (perf
    /// attached), by name.
    pub writes_pass_on: Vec<String>,
    /// The second build whose courier systems are the `@baseline` rows.
    pub baseline_bin: Option<PathBuf>,
}

/// What a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Pass {
    /// calls/s, latency, CPU, memory and allocations, with nothing
    /// attached to the processes.
    #[default]
    Speed,
    /// Write syscalls per call, with perf's syscall tracepoints attached
    /// (which tax every syscall: its calls/s are not reported).
    Writes,
}

/// One (placement, payload, concurrency, system) cell's run.
#[derive(Debug, Clone)]
pub struct Job {
    /// Where the processes go.
    pub placement: Placement,
    /// The system.
    pub system: System,
    /// Payload bytes.
    pub payload: usize,
    /// Calls in flight.
    pub concurrency: usize,
    /// Which repetition (0-based).
    pub repeat: usize,
    /// What the run measures.
    pub pass: Pass,
}

impl Plan {
    /// The runs in order: per cell, the systems interleaved, repeated
    /// (A B C D A B C D A B C D), then the cell's writes pass (A B C D).
    pub fn jobs(&self) -> Vec<Job> {
        let mut jobs = Vec::new();
        for (placement, payloads) in &self.placements {
            let systems: Vec<System> = self
                .systems
                .iter()
                .copied()
                .filter(|&s| placement.runs(s))
                .collect();
            for &payload in payloads {
                for &concurrency in &self.concurrency {
                    let passes = (0..self.repeats).map(|r| (r, Pass::Speed)).chain(
                        self.writes_pass_on
                            .contains(&placement.name)
                            .then_some((0, Pass::Writes)),
                    );
                    for (repeat, pass) in passes {
                        for &system in &systems {
                            if system.supports(concurrency) {
                                jobs.push(Job {
                                    placement: placement.clone(),
                                    system,
                                    payload,
                                    concurrency,
                                    repeat,
                                    pass,
                                });
                            }
                        }
                    }
                }
            }
        }
        jobs
    }

    /// A rough duration of the whole plan, for the start-up message.
    pub fn estimate(&self) -> Duration {
        self.jobs()
            .iter()
            .map(|job| match job.pass {
                Pass::Speed => self.timing.warmup + self.timing.window + RUN_OVERHEAD,
                Pass::Writes => {
                    self.writes_timing.warmup
                        + self.writes_timing.window
                        + RUN_OVERHEAD
                        + PERF_ATTACH
                        + PERF_STOP
                }
            })
            .sum()
    }
}

/// About how long a run takes besides its warm-up and window: start the
/// processes, connect, stop them.
const RUN_OVERHEAD: Duration = Duration::from_millis(200);
/// About how long perf takes to stop and report.
const PERF_STOP: Duration = Duration::from_millis(150);

/// The figures of one successful run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metrics {
    /// Calls that ended in the window, per second.
    pub calls_per_sec: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// Calls counted for the per-call figures (window and drain).
    pub calls: u64,
    /// Client CPU seconds per 100k calls.
    pub client_cpu_s_per_100k: Option<f64>,
    /// Server CPU seconds per 100k calls.
    pub server_cpu_s_per_100k: Option<f64>,
    /// Peak RSS of the server (VmHWM) at the end of the run, MiB.
    pub server_peak_rss_mib: Option<f64>,
    /// Client write syscalls per call.
    pub client_writes_per_call: Option<f64>,
    /// Server write syscalls per call.
    pub server_writes_per_call: Option<f64>,
    /// Bytes the client allocated per call.
    pub client_alloc_bytes_per_call: f64,
    /// Bytes the server allocated per call.
    pub server_alloc_bytes_per_call: Option<f64>,
    /// Allocations of the client per call.
    pub client_allocs_per_call: f64,
    /// Allocations of the server per call.
    pub server_allocs_per_call: Option<f64>,
}

/// One run as recorded in results.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// The placement's name.
    pub placement: String,
    /// The system.
    pub system: System,
    /// Payload bytes.
    pub payload: usize,
    /// Calls in flight.
    pub concurrency: usize,
    /// Which repetition.
    pub repeat: usize,
    /// What the run measured.
    #[serde(default)]
    pub pass: Pass,
    /// The figures, if the run worked.
    pub metrics: Option<Metrics>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Pins this process (all its threads) to `cpus`, or lets it run anywhere
/// in `all` when `cpus` is `None`. Best effort: a failure only means the
/// orchestrator competes with what it measures, as it would unpinned.
fn pin_self(cpus: Option<&str>, all: &str) {
    let list = cpus.unwrap_or(all);
    if list.is_empty() {
        return;
    }
    let _ = Command::new("taskset")
        .args(["-a", "-p", "-c", list, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Runs every job in order, printing progress to stderr. The orchestrator
/// pins itself to each placement's spare CPUs (if it has any) while that
/// placement runs.
pub fn run_all(plan: &Plan, exe: &Path, writes: WriteCounter, machine: &Machine) -> Vec<RunRecord> {
    let jobs = plan.jobs();
    let total = jobs.len();
    let started = Instant::now();
    let mut records = Vec::with_capacity(total);
    let mut pinned_for: Option<String> = None;
    for (i, job) in jobs.into_iter().enumerate() {
        if pinned_for.as_deref() != Some(job.placement.name.as_str()) {
            pin_self(job.placement.spare_cpus.as_deref(), &machine.cpus_allowed);
            pinned_for = Some(job.placement.name.clone());
        }
        let timing = match job.pass {
            Pass::Speed => plan.timing,
            Pass::Writes => plan.writes_timing,
        };
        let result = match (job.system.of_baseline(), &plan.baseline_bin) {
            (None, _) => run_one(exe, &job, timing, writes),
            (Some(_), Some(baseline)) => run_one(baseline, &job, timing, writes),
            (Some(_), None) => Err("no baseline build (run --baseline-bin PATH)".to_owned()),
        };
        let line = match (&result, job.pass) {
            (Ok(m), Pass::Speed) => format!(
                "{:>9.0} calls/s  p50 {:>8.1} µs  p99 {:>8.1} µs",
                m.calls_per_sec, m.p50_us, m.p99_us
            ),
            (Ok(m), Pass::Writes) => format!(
                "writes/call: client {}, server {}",
                m.client_writes_per_call
                    .map_or("?".to_owned(), |w| format!("{w:.3}")),
                m.server_writes_per_call
                    .map_or("?".to_owned(), |w| format!("{w:.3}")),
            ),
            (Err(e), _) => format!("FAILED: {e}"),
        };
        eprintln!(
            "[{:>3}/{total} {:>4.0}s] {} {:>6} c={:<3} {:<25} {}  {line}",
            i + 1,
            started.elapsed().as_secs_f64(),
            job.placement.name,
            crate::report::size_label(job.payload),
            job.concurrency,
            job.system.name(),
            match job.pass {
                Pass::Speed => format!("#{}", job.repeat + 1),
                Pass::Writes => "writes".to_owned(),
            },
        );
        let (metrics, error) = match result {
            Ok(m) => (Some(m), None),
            Err(e) => (None, Some(e)),
        };
        records.push(RunRecord {
            placement: job.placement.name.clone(),
            system: job.system,
            payload: job.payload,
            concurrency: job.concurrency,
            repeat: job.repeat,
            pass: job.pass,
            metrics,
            error,
        });
    }
    pin_self(None, &machine.cpus_allowed);
    records
}

/// `exe ARGS`, under `taskset -c CPUS` when pinned.
fn command(exe: &Path, cpus: Option<&str>, args: &[String]) -> Command {
    match cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpus).arg(exe).args(args);
            c
        }
        None => {
            let mut c = Command::new(exe);
            c.args(args);
            c
        }
    }
}

fn parse_alloc(line: &str) -> Result<AllocCounters, String> {
    let mut parts = line.split_whitespace().map(str::parse::<u64>);
    match (parts.next(), parts.next()) {
        (Some(Ok(bytes)), Some(Ok(blocks))) => Ok(AllocCounters { bytes, blocks }),
        _ => Err(format!("bad ALLOC line `{line}`")),
    }
}

/// How long perf needs after `perf stat -p` starts before it counts.
const PERF_ATTACH: Duration = Duration::from_millis(250);

/// One run: server, client, warm-up, window, figures. `exe` is this build,
/// or the baseline build for an `@baseline` system (which is then given
/// only the arguments every build of the harness understands).
fn run_one(exe: &Path, job: &Job, timing: Timing, writes: WriteCounter) -> Result<Metrics, String> {
    let p = &job.placement;
    let (system, baseline) = match job.system.of_baseline() {
        Some(twin) => (twin.name(), true),
        None => (job.system.name(), false),
    };
    let mut server_args: Vec<String> = vec!["server".into(), "--system".into(), system.into()];
    server_args.extend(p.runtime.args());
    if !baseline {
        server_args.extend(["--payload".into(), job.payload.to_string()]);
    }
    let mut server = ChildProc::spawn(
        command(exe, p.server_cpus.as_deref(), &server_args),
        &format!("{} server", job.system.name()),
    )?;
    let addr = server.expect("LISTEN", Duration::from_secs(20))?;
    let mut client_args: Vec<String> = vec![
        "client".into(),
        "--system".into(),
        system.into(),
        "--addr".into(),
        addr,
        "--payload".into(),
        job.payload.to_string(),
        "--concurrency".into(),
        job.concurrency.to_string(),
        "--warmup-ms".into(),
        timing.warmup.as_millis().to_string(),
        "--window-ms".into(),
        timing.window.as_millis().to_string(),
    ];
    client_args.extend(p.runtime.args());
    let mut client = ChildProc::spawn(
        command(exe, p.client_cpus.as_deref(), &client_args),
        &format!("{} client", job.system.name()),
    )?;
    client.expect("READY", timing.warmup + Duration::from_secs(30))?;

    let (server_pid, client_pid) = (server.pid(), client.pid());
    server.send("MARK")?;
    let server_alloc_before = parse_alloc(&server.expect("ALLOC", Duration::from_secs(5))?)?;
    // perf's tracepoints tax every syscall: attached only in the writes
    // pass. /proc's counter costs nothing: read in every run.
    let counter = match (writes, job.pass) {
        (WriteCounter::Perf, Pass::Speed) => None,
        (WriteCounter::Perf, Pass::Writes) => Some(WriteCounter::Perf),
        (WriteCounter::ProcSyscw, _) => Some(WriteCounter::ProcSyscw),
    };
    let server_writes = counter.map(|c| c.attach(server_pid, p.spare_cpus.as_deref()));
    let client_writes = counter.map(|c| c.attach(client_pid, p.spare_cpus.as_deref()));
    if counter == Some(WriteCounter::Perf) {
        thread::sleep(PERF_ATTACH);
    }
    let server_cpu_before = procfs::cpu_seconds(server_pid);
    let client_cpu_before = procfs::cpu_seconds(client_pid);
    client.send("GO")?;
    let result = client.expect("RESULT", timing.window + Duration::from_secs(60));
    let server_cpu_after = procfs::cpu_seconds(server_pid);
    let client_cpu_after = procfs::cpu_seconds(client_pid);
    let server_writes = server_writes.and_then(|w| w.finish());
    let client_writes = client_writes.and_then(|w| w.finish());
    let report: ClientReport =
        serde_json::from_str(&result?).map_err(|e| format!("bad RESULT: {e}"))?;
    server.send("MARK")?;
    let server_alloc =
        parse_alloc(&server.expect("ALLOC", Duration::from_secs(5))?)?.since(server_alloc_before);
    let rss = procfs::peak_rss_kib(server_pid);
    client.finish(Duration::from_secs(2));
    server.finish(Duration::from_secs(2));

    if report.total_calls == 0 || report.calls_in_window == 0 {
        return Err("no call completed in the window".to_owned());
    }
    let calls = report.total_calls as f64;
    let per_100k = |before: Option<f64>, after: Option<f64>| {
        Some((after? - before?).max(0.0) / calls * 100_000.0)
    };
    Ok(Metrics {
        calls_per_sec: report.calls_in_window as f64 / report.window_s,
        p50_us: report.p50_ns as f64 / 1000.0,
        p99_us: report.p99_ns as f64 / 1000.0,
        calls: report.total_calls,
        client_cpu_s_per_100k: per_100k(client_cpu_before, client_cpu_after),
        server_cpu_s_per_100k: per_100k(server_cpu_before, server_cpu_after),
        server_peak_rss_mib: rss.map(|kib| kib as f64 / 1024.0),
        client_writes_per_call: client_writes.map(|w| w as f64 / calls),
        server_writes_per_call: server_writes.map(|w| w as f64 / calls),
        client_alloc_bytes_per_call: report.alloc.bytes as f64 / calls,
        server_alloc_bytes_per_call: Some(server_alloc.bytes as f64 / calls),
        client_allocs_per_call: report.alloc.blocks as f64 / calls,
        server_allocs_per_call: Some(server_alloc.blocks as f64 / calls),
    })
}

/// The directory the harness writes into by default: the book's
/// performance chapter, or a scratch directory for quick runs.
pub fn default_out(quick: bool) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if quick {
        root.join("target").join("courier-bench-quick")
    } else {
        root.join("book").join("src").join("performance")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(cpus: &str) -> Machine {
        let mut m = Machine::detect();
        m.cpus_allowed = cpus.to_owned();
        m.taskset = true;
        m
    }

    #[test]
    fn jobs_interleave_systems_within_a_cell_then_count_writes() {
        let split = Placement::split(&machine("0-1"));
        let timing = Timing {
            warmup: Duration::ZERO,
            window: Duration::ZERO,
        };
        let plan = Plan {
            systems: vec![System::Tonic, System::RawTokio, System::FloorStd],
            concurrency: vec![1, 32],
            repeats: 2,
            timing,
            writes_timing: timing,
            placements: vec![(split.clone(), vec![16])],
            writes_pass_on: vec![split.name.clone()],
            baseline_bin: None,
        };
        let order: Vec<(usize, System, Pass)> = plan
            .jobs()
            .iter()
            .map(|j| (j.concurrency, j.system, j.pass))
            .collect();
        use Pass::*;
        use System::*;
        assert_eq!(
            order,
            vec![
                (1, Tonic, Speed),
                (1, RawTokio, Speed),
                (1, FloorStd, Speed),
                (1, Tonic, Speed),
                (1, RawTokio, Speed),
                (1, FloorStd, Speed),
                (1, Tonic, Writes),
                (1, RawTokio, Writes),
                (1, FloorStd, Writes),
                (32, Tonic, Speed),
                (32, RawTokio, Speed),
                (32, Tonic, Speed),
                (32, RawTokio, Speed),
                (32, Tonic, Writes),
                (32, RawTokio, Writes),
            ]
        );
    }

    #[test]
    fn other_runtimes_skip_the_floor_and_current_thread_skips_the_baseline() {
        let two = machine("0-1");
        let ct = Placement::split_current_thread(&two);
        assert_eq!(ct.runtime, Runtime::CurrentThread);
        assert!(ct.runs(System::CourierProtobuf));
        assert!(!ct.runs(System::FloorStd));
        assert!(!ct.runs(System::CourierProtobufBaseline));
        let multi = Placement::multi_2(&two).expect("two cpus");
        assert!(multi.runs(System::CourierProtobufBaseline));
        assert!(!multi.runs(System::FloorStd));
        assert!(Placement::split(&two).runs(System::FloorStd));
    }

    #[test]
    fn spare_cpus_host_the_orchestrator_where_there_are_any() {
        let two = machine("0-1");
        assert_eq!(Placement::split(&two).spare_cpus, None);
        assert_eq!(
            Placement::shared(&two).unwrap().spare_cpus.as_deref(),
            Some("1")
        );
        let multi = Placement::multi_2(&two).unwrap();
        assert_eq!(multi.server_cpus.as_deref(), Some("0,1"));
        assert_eq!(multi.client_cpus.as_deref(), Some("0,1"));
        assert_eq!(multi.spare_cpus, None);

        let six = machine("0-5");
        let split = Placement::split(&six);
        assert_eq!(split.server_cpus.as_deref(), Some("0"));
        assert_eq!(split.client_cpus.as_deref(), Some("1"));
        assert_eq!(split.spare_cpus.as_deref(), Some("2,3,4,5"));
        let multi = Placement::multi_2(&six).unwrap();
        assert_eq!(multi.server_cpus.as_deref(), Some("0,1"));
        assert_eq!(multi.client_cpus.as_deref(), Some("2,3"));
        assert_eq!(multi.spare_cpus.as_deref(), Some("4,5"));
    }
}
