//! The `run` command: starts a server and a client process per run, pinned
//! with `taskset`, interleaves the systems cell by cell, samples `/proc`
//! and the write counter around the measured window, and collects the
//! runs for [`crate::report`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::alloc::AllocCounters;
use crate::child::ChildProc;
use crate::load::{ClientReport, Timing};
use crate::machine::Machine;
use crate::procfs;
use crate::syscalls::WriteCounter;
use crate::systems::System;

/// Where the two processes of a run are placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Short name: `split` (one core each) or `shared` (one core for both).
    pub name: String,
    /// `taskset -c` list of the server, `None` when unpinned.
    pub server_cpus: Option<String>,
    /// `taskset -c` list of the client, `None` when unpinned.
    pub client_cpus: Option<String>,
    /// Tokio workers of the server (= the cores it is given).
    pub server_workers: usize,
    /// Tokio workers of the client (= the cores it is given).
    pub client_workers: usize,
}

impl Placement {
    /// Server and client on a core each (the first two allowed CPUs), or
    /// unpinned if there is no taskset or only one CPU.
    pub fn split(machine: &Machine) -> Placement {
        let ids = machine.cpu_ids();
        if machine.taskset && ids.len() >= 2 {
            Placement {
                name: "split".to_owned(),
                server_cpus: Some(ids[0].to_string()),
                client_cpus: Some(ids[1].to_string()),
                server_workers: 1,
                client_workers: 1,
            }
        } else {
            Placement {
                name: "unpinned".to_owned(),
                server_cpus: None,
                client_cpus: None,
                server_workers: 1,
                client_workers: 1,
            }
        }
    }

    /// Server and client on the same core, if taskset is there.
    pub fn shared(machine: &Machine) -> Option<Placement> {
        let first = *machine.cpu_ids().first()?;
        machine.taskset.then(|| Placement {
            name: "shared".to_owned(),
            server_cpus: Some(first.to_string()),
            client_cpus: Some(first.to_string()),
            server_workers: 1,
            client_workers: 1,
        })
    }

    /// E.g. "server on cpu0, client on cpu1; 1 tokio worker each".
    pub fn describe(&self) -> String {
        let cpu = |c: &Option<String>| {
            c.as_ref()
                .map_or("any cpu (unpinned)".to_owned(), |c| format!("cpu{c}"))
        };
        format!(
            "server on {}, client on {}; tokio workers: server {}, client {}",
            cpu(&self.server_cpus),
            cpu(&self.client_cpus),
            self.server_workers,
            self.client_workers,
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
    /// Placements, with the payloads each one runs.
    pub placements: Vec<(Placement, Vec<usize>)>,
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
}

impl Plan {
    /// The runs in order: per cell, the systems interleaved, repeated
    /// (A B C D A B C D A B C D).
    pub fn jobs(&self) -> Vec<Job> {
        let mut jobs = Vec::new();
        for (placement, payloads) in &self.placements {
            for &payload in payloads {
                for &concurrency in &self.concurrency {
                    for repeat in 0..self.repeats {
                        for &system in &self.systems {
                            if system.supports(concurrency) {
                                jobs.push(Job {
                                    placement: placement.clone(),
                                    system,
                                    payload,
                                    concurrency,
                                    repeat,
                                });
                            }
                        }
                    }
                }
            }
        }
        jobs
    }
}

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
    /// The figures, if the run worked.
    pub metrics: Option<Metrics>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Runs every job in order, printing progress to stderr.
pub fn run_all(plan: &Plan, exe: &Path, writes: WriteCounter) -> Vec<RunRecord> {
    let jobs = plan.jobs();
    let total = jobs.len();
    let started = Instant::now();
    let mut records = Vec::with_capacity(total);
    for (i, job) in jobs.into_iter().enumerate() {
        let result = run_one(exe, &job, plan.timing, writes);
        let line = match &result {
            Ok(m) => format!(
                "{:>9.0} calls/s  p50 {:>8.1} µs  p99 {:>8.1} µs",
                m.calls_per_sec, m.p50_us, m.p99_us
            ),
            Err(e) => format!("FAILED: {e}"),
        };
        eprintln!(
            "[{:>3}/{total} {:>4.0}s] {} {:>6} c={:<3} {:<16} #{}  {line}",
            i + 1,
            started.elapsed().as_secs_f64(),
            job.placement.name,
            crate::report::size_label(job.payload),
            job.concurrency,
            job.system.name(),
            job.repeat + 1,
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
            metrics,
            error,
        });
    }
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

/// One run: server, client, warm-up, window, figures.
fn run_one(exe: &Path, job: &Job, timing: Timing, writes: WriteCounter) -> Result<Metrics, String> {
    let p = &job.placement;
    let system = job.system.name();
    let server_args: Vec<String> = vec![
        "server".into(),
        "--system".into(),
        system.into(),
        "--workers".into(),
        p.server_workers.to_string(),
    ];
    let mut server = ChildProc::spawn(
        command(exe, p.server_cpus.as_deref(), &server_args),
        &format!("{system} server"),
    )?;
    let addr = server.expect("LISTEN", Duration::from_secs(20))?;
    let client_args: Vec<String> = vec![
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
        "--workers".into(),
        p.client_workers.to_string(),
    ];
    let mut client = ChildProc::spawn(
        command(exe, p.client_cpus.as_deref(), &client_args),
        &format!("{system} client"),
    )?;
    client.expect("READY", timing.warmup + Duration::from_secs(30))?;

    let (server_pid, client_pid) = (server.pid(), client.pid());
    server.send("MARK")?;
    let server_alloc_before = parse_alloc(&server.expect("ALLOC", Duration::from_secs(5))?)?;
    let server_writes = writes.attach(server_pid);
    let client_writes = writes.attach(client_pid);
    if writes == WriteCounter::Perf {
        thread::sleep(PERF_ATTACH);
    }
    let server_cpu_before = procfs::cpu_seconds(server_pid);
    let client_cpu_before = procfs::cpu_seconds(client_pid);
    client.send("GO")?;
    let result = client.expect("RESULT", timing.window + Duration::from_secs(60));
    let server_cpu_after = procfs::cpu_seconds(server_pid);
    let client_cpu_after = procfs::cpu_seconds(client_pid);
    let server_writes = server_writes.finish();
    let client_writes = client_writes.finish();
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

    #[test]
    fn jobs_interleave_systems_within_a_cell() {
        let machine = Machine::detect();
        let plan = Plan {
            systems: vec![System::Tonic, System::RawTokio, System::FloorStd],
            concurrency: vec![1, 32],
            repeats: 2,
            timing: Timing {
                warmup: Duration::ZERO,
                window: Duration::ZERO,
            },
            placements: vec![(Placement::split(&machine), vec![16])],
        };
        let order: Vec<(usize, System)> = plan
            .jobs()
            .iter()
            .map(|j| (j.concurrency, j.system))
            .collect();
        use System::*;
        assert_eq!(
            order,
            vec![
                (1, Tonic),
                (1, RawTokio),
                (1, FloorStd),
                (1, Tonic),
                (1, RawTokio),
                (1, FloorStd),
                (32, Tonic),
                (32, RawTokio),
                (32, Tonic),
                (32, RawTokio),
            ]
        );
    }
}
