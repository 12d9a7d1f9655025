//! `courier-bench`: measures courier against tonic, tarpc, a raw tokio
//! echo and a blocking std ping-pong, on the same machine and workload.
//!
//! `courier-bench run` is the one command: it re-executes itself as
//! `server` and `client` processes (pinned with taskset), interleaves the
//! systems, and writes results.md, results.json and chart.svg (by default
//! into the book's performance chapter). `run --quick` takes a few seconds
//! and only proves the harness works. `callgrind` counts instructions of
//! encode, decode and whole calls.

mod alloc;
mod chart;
mod child;
mod load;
mod machine;
mod microbench;
mod orchestrate;
mod procfs;
mod report;
mod syscalls;
mod systems;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::load::Timing;
use crate::machine::Machine;
use crate::orchestrate::{Pass, Placement, Plan};
use crate::report::{PlacementInfo, Results, RunConfig};
use crate::syscalls::WriteCounter;
use crate::systems::{ClientSpec, Runtime, System};

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

/// Benchmarks courier against tonic, tarpc, a raw tokio echo and a
/// blocking std ping-pong.
#[derive(Debug, Parser)]
#[command(name = "courier-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Runs the benchmark and writes results.md, results.json and chart.svg.
    Run(RunArgs),
    /// Counts instructions of encode, decode and whole calls under
    /// valgrind's callgrind; writes callgrind.md and callgrind.json.
    Callgrind(CallgrindArgs),
    /// Rewrites results.md and chart.svg from the results.json in a
    /// directory (after a change to the report, without running again).
    Render {
        /// The directory holding results.json [default: book/src/performance].
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// (Internal) serves one system until stdin closes.
    #[command(hide = true)]
    Server {
        /// The system to serve.
        #[arg(long)]
        system: System,
        /// Tokio worker threads.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// A current-thread runtime instead (overrides --workers).
        #[arg(long)]
        current_thread: bool,
        /// The payload of the run's calls (systems a user would tune for
        /// large messages are tuned from it).
        #[arg(long, default_value_t = 0)]
        payload: usize,
    },
    /// (Internal) the client of one run.
    #[command(hide = true)]
    Client(ClientArgs),
    /// (Internal) one operation N times, for callgrind.
    #[command(hide = true)]
    Microbench {
        /// The operation.
        #[arg(long)]
        op: microbench::Op,
        /// How many times.
        #[arg(long)]
        iters: u64,
        /// Payload bytes.
        #[arg(long, default_value_t = 1024)]
        payload: usize,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Half a minute at most: one tiny cell per system (16 B, 1 in flight,
    /// one run each, plus its writes run), and the same cell on the other
    /// runtimes, to check that the harness works. Writes to
    /// target/courier-bench-quick unless --out is given.
    #[arg(long)]
    quick: bool,
    /// Where the results go [default: book/src/performance, or
    /// target/courier-bench-quick with --quick].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Systems to run, comma-separated [default: all of this build, plus
    /// courier-protobuf@baseline with --baseline-bin].
    #[arg(long, value_delimiter = ',')]
    systems: Option<Vec<System>>,
    /// Payload sizes in bytes, on the split placement [default: 1024,65536;
    /// 16 B adds about 5 minutes to a full run].
    #[arg(long, value_delimiter = ',')]
    payloads: Option<Vec<usize>>,
    /// Calls in flight [default: 1,32,256].
    #[arg(long, value_delimiter = ',')]
    concurrency: Option<Vec<usize>>,
    /// Runs per cell [default: 5].
    #[arg(long)]
    repeats: Option<usize>,
    /// Warm-up per run in ms [default: 400].
    #[arg(long)]
    warmup_ms: Option<u64>,
    /// Measured window per run in ms [default: 1500].
    #[arg(long)]
    window_ms: Option<u64>,
    /// Window of each run of the writes pass in ms [default: 1000].
    #[arg(long)]
    writes_window_ms: Option<u64>,
    /// Other runtimes, each as its own placement: `current-thread` (split,
    /// current-thread runtimes), `multi-2` (two workers each); `none` for
    /// none [default: current-thread,multi-2].
    #[arg(long, value_delimiter = ',')]
    runtimes: Option<Vec<String>>,
    /// Payloads measured on the other runtimes; `none` for none
    /// [default: 1024].
    #[arg(long, value_delimiter = ',')]
    runtime_payloads: Option<Vec<String>>,
    /// Payloads also measured with server and client sharing one core,
    /// comma-separated; `none` for none [default: none].
    #[arg(long, value_delimiter = ',')]
    shared_core_payloads: Option<Vec<String>>,
    /// Prints the plan (placements, runs, estimated duration) and exits.
    #[arg(long)]
    dry_run: bool,
    /// A second build of courier-bench (an older commit, see bench/ab.sh):
    /// its courier systems run as `courier-protobuf@baseline` rows,
    /// interleaved with this build's in the same run.
    #[arg(long)]
    baseline_bin: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ClientArgs {
    /// The system to call.
    #[arg(long)]
    system: System,
    /// The server's address.
    #[arg(long)]
    addr: SocketAddr,
    /// Payload bytes.
    #[arg(long)]
    payload: usize,
    /// Calls in flight.
    #[arg(long)]
    concurrency: usize,
    /// Warm-up, ms.
    #[arg(long)]
    warmup_ms: u64,
    /// Measured window, ms.
    #[arg(long)]
    window_ms: u64,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// A current-thread runtime instead (overrides --workers).
    #[arg(long)]
    current_thread: bool,
}

/// The runtime the `server` and `client` subcommands were asked for.
fn child_runtime(workers: usize, current_thread: bool) -> Runtime {
    if current_thread {
        Runtime::CurrentThread
    } else {
        Runtime::MultiThread(workers.max(1))
    }
}

#[derive(Debug, Args)]
struct CallgrindArgs {
    /// Payload sizes in bytes [default: 16,1024,65536].
    #[arg(long, value_delimiter = ',')]
    payloads: Option<Vec<usize>>,
    /// Operations to count, comma-separated [default: all].
    #[arg(long, value_delimiter = ',')]
    ops: Option<Vec<microbench::Op>>,
    /// Where callgrind.md and callgrind.json go [default: book/src/performance].
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(args) => run(args),
        Cmd::Callgrind(args) => std::env::current_exe()
            .map_err(|e| format!("cannot find own executable: {e}"))
            .and_then(|exe| {
                let payloads = args.payloads.unwrap_or_else(|| vec![16, 1024, 65536]);
                let out = args.out.unwrap_or_else(|| orchestrate::default_out(false));
                let ops = args.ops.unwrap_or_else(|| microbench::Op::ALL.to_vec());
                microbench::callgrind(&exe, &payloads, &ops, &out)
                    .map(|()| eprintln!("wrote {}", out.join("callgrind.md").display()))
            }),
        Cmd::Render { dir } => {
            let dir = dir.unwrap_or_else(|| orchestrate::default_out(false));
            report::render(&dir)
        }
        Cmd::Server {
            system,
            workers,
            current_thread,
            payload,
        } => systems::serve(system, child_runtime(workers, current_thread), payload),
        Cmd::Client(args) => systems::run_client(&ClientSpec {
            system: args.system,
            addr: args.addr,
            payload: args.payload,
            concurrency: args.concurrency,
            timing: Timing {
                warmup: Duration::from_millis(args.warmup_ms),
                window: Duration::from_millis(args.window_ms),
            },
            runtime: child_runtime(args.workers, args.current_thread),
        }),
        Cmd::Microbench { op, iters, payload } => microbench::run(op, iters, payload),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Children report on stdout for the orchestrator, too.
            child::say(&format!("ERROR {}", e.replace('\n', " ")));
            eprintln!("courier-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses a list of payload sizes where `none` means none.
fn payload_list(list: Option<Vec<String>>, default: &[usize]) -> Result<Vec<usize>, String> {
    match list {
        None => Ok(default.to_vec()),
        Some(list) => list
            .iter()
            .filter(|p| p.as_str() != "none")
            .map(|p| p.parse().map_err(|_| format!("bad payload size `{p}`")))
            .collect(),
    }
}

/// The `run` command.
fn run(args: RunArgs) -> Result<(), String> {
    let quick = args.quick;
    // A run that changes what is measured is not the full run, whatever
    // else it is (`--out`, `--baseline-bin` and `--dry-run` change nothing).
    let narrowed = args.systems.is_some()
        || args.payloads.is_some()
        || args.concurrency.is_some()
        || args.repeats.is_some()
        || args.warmup_ms.is_some()
        || args.window_ms.is_some()
        || args.writes_window_ms.is_some()
        || args.runtimes.is_some()
        || args.runtime_payloads.is_some()
        || args.shared_core_payloads.is_some();
    let mode = match (quick, narrowed) {
        (true, _) => "quick",
        (false, true) => "custom",
        (false, false) => "full",
    };
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let mut machine = Machine::detect();
    let mut notes = Vec::new();
    let baseline_bin = match args.baseline_bin {
        Some(path) if path.is_file() => Some(
            path.canonicalize()
                .map_err(|e| format!("--baseline-bin {}: {e}", path.display()))?,
        ),
        Some(path) => return Err(format!("--baseline-bin {}: no such file", path.display())),
        None => None,
    };
    let mut systems = args.systems.unwrap_or_else(|| {
        let mut all = System::ALL.to_vec();
        if baseline_bin.is_some() {
            all.insert(1, System::CourierProtobufBaseline);
        }
        all
    });
    systems.dedup();
    systems.retain(|s| match (s.of_baseline(), &baseline_bin, s.available()) {
        (Some(_), Some(_), _) | (None, _, Ok(())) => true,
        (Some(_), None, _) => {
            notes.push(format!("{} skipped: no --baseline-bin.", s.name()));
            false
        }
        (None, _, Err(why)) => {
            notes.push(format!("{} skipped: {why}.", s.name()));
            false
        }
    });
    if let Some(bin) = &baseline_bin {
        notes.push(format!(
            "`@baseline` rows: the same system run by a second build of the harness, {} (not on current-thread runtimes: older builds have no such option).",
            bin.display()
        ));
    }
    let payloads = args
        .payloads
        .unwrap_or_else(|| if quick { vec![16] } else { vec![1024, 65536] });
    let concurrency = args
        .concurrency
        .unwrap_or_else(|| if quick { vec![1] } else { vec![1, 32, 256] });
    let shared_payloads = payload_list(args.shared_core_payloads, &[])?;
    let runtime_payloads =
        payload_list(args.runtime_payloads, if quick { &[16] } else { &[1024] })?;
    let runtimes = args
        .runtimes
        .unwrap_or_else(|| vec!["current-thread".to_owned(), "multi-2".to_owned()]);
    let timing = Timing {
        warmup: Duration::from_millis(args.warmup_ms.unwrap_or(if quick { 100 } else { 400 })),
        window: Duration::from_millis(args.window_ms.unwrap_or(if quick { 200 } else { 1500 })),
    };
    let writes_timing = Timing {
        warmup: timing.warmup,
        window: Duration::from_millis(args.writes_window_ms.unwrap_or(if quick {
            200
        } else {
            1000
        })),
    };
    let repeats = args.repeats.unwrap_or(if quick { 1 } else { 5 }).max(1);
    let split = Placement::split(&machine);
    if split.server_cpus.is_none() {
        notes.push("Processes are not pinned (taskset missing or fewer than 2 CPUs).".to_owned());
    }
    let mut placements = vec![(split, payloads.clone())];
    if !runtime_payloads.is_empty() {
        for runtime in runtimes.iter().filter(|r| r.as_str() != "none") {
            match runtime.as_str() {
                "current-thread" => placements.push((
                    Placement::split_current_thread(&machine),
                    runtime_payloads.clone(),
                )),
                "multi-2" => match Placement::multi_2(&machine) {
                    Some(p) => placements.push((p, runtime_payloads.clone())),
                    None => notes.push(
                        "No multi-2 runs: taskset is missing or there is one CPU.".to_owned(),
                    ),
                },
                other => {
                    return Err(format!(
                        "--runtimes: `{other}` is not current-thread, multi-2 or none"
                    ));
                }
            }
        }
    }
    if !shared_payloads.is_empty() {
        match Placement::shared(&machine) {
            Some(shared) => placements.push((shared, shared_payloads)),
            None => notes.push("No shared-core runs: taskset is missing.".to_owned()),
        }
    }
    if machine.cpu_ids().len() < 3 {
        notes.push("This machine has 2 CPUs: both are measured on the split placements, so the orchestrator and perf have no core of their own there. The orchestrator sleeps in a blocking read during each window; perf is attached only in the writes pass, whose calls/s are not reported.".to_owned());
    }
    notes.push("tarpc runs its serde transport with each of its two built-in codecs: JSON (a bytes payload travels as a JSON array of numbers) and bincode 1 (length and raw bytes; bincode is unmaintained, and used here only because tarpc's users use it).".to_owned());
    notes.push(format!("tonic: transport::Server and Channel, a hand-written prost message and service (no protoc), no router; default settings, except `http2_adaptive_window(true)` on both sides for payloads from {} on (as a competent user sending large messages would set it).", report::size_label(systems::tonic_sys::ADAPTIVE_WINDOW_FROM)));
    notes.push("raw-rpc: the raw echo's framing and server, called by the same closed-loop callers as the RPC systems (a task per call in flight) with a request id, a pending map and a oneshot per call: the RPC-shaped ceiling. raw-tokio: one task per side, no per-call state: the ceiling of the wire.".to_owned());
    let writes = WriteCounter::detect();
    let plan = Plan {
        systems: systems.clone(),
        concurrency: concurrency.clone(),
        repeats,
        timing,
        writes_timing,
        placements: placements.clone(),
        // Quick runs count writes on the first placement only.
        writes_pass_on: if writes != WriteCounter::Perf {
            Vec::new()
        } else if quick {
            vec![placements[0].0.name.clone()]
        } else {
            placements.iter().map(|(p, _)| p.name.clone()).collect()
        },
        baseline_bin: baseline_bin.clone(),
    };
    let jobs = plan.jobs();
    let writes_runs = jobs.iter().filter(|j| j.pass == Pass::Writes).count();
    let estimate = plan.estimate().as_secs_f64();
    eprintln!(
        "courier-bench: {} runs ({} measured, {writes_runs} counting writes), about {}; {}; write syscalls via {}{}",
        jobs.len(),
        jobs.len() - writes_runs,
        if estimate < 120.0 {
            format!("{estimate:.0} s")
        } else {
            format!("{:.0} min", estimate / 60.0)
        },
        placements
            .iter()
            .map(|(p, _)| format!("{}: {}", p.name, p.describe()))
            .collect::<Vec<_>>()
            .join("; "),
        writes.describe(),
        if !plan.writes_pass_on.is_empty() {
            " (in a separate pass)"
        } else {
            ""
        }
    );
    if args.dry_run {
        return Ok(());
    }
    let runs = orchestrate::run_all(&plan, &exe, writes, &machine);
    machine.load_after = procfs::load_average();
    let out = args.out.unwrap_or_else(|| orchestrate::default_out(quick));
    let cells = report::summarize(&runs);
    let ratios = report::ratios(&cells);

    let command = std::iter::once("cargo run --release -p courier-bench --".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let mut results = Results {
        schema: report::SCHEMA,
        machine,
        config: RunConfig {
            mode: mode.to_owned(),
            command,
            systems,
            concurrency,
            repeats,
            warmup_ms: timing.warmup.as_millis() as u64,
            window_ms: timing.window.as_millis() as u64,
            writes_window_ms: (!plan.writes_pass_on.is_empty())
                .then_some(writes_timing.window.as_millis() as u64),
            write_counter: writes.describe().to_owned(),
            tonic_adaptive_window_from: Some(systems::tonic_sys::ADAPTIVE_WINDOW_FROM),
        },
        placements: placements
            .iter()
            .map(|(p, payloads)| PlacementInfo {
                name: p.name.clone(),
                description: p.describe(),
                payloads: payloads.clone(),
            })
            .collect(),
        notes,
        cells,
        ratios,
        targets: Vec::new(),
        runs,
    };
    results.targets =
        report::all_targets(&results.cells, &placements[0].0.name, &results.config, &out);
    report::write_all(&results, &out)?;
    println!("{}", report::ratios_markdown(&results));
    println!("{}", report::targets_markdown(&results));
    eprintln!(
        "wrote results.md, targets.md, results.json and chart.svg to {}",
        out.display()
    );
    Ok(())
}
