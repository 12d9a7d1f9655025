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
use crate::orchestrate::{Placement, Plan};
use crate::report::{PlacementInfo, Results, RunConfig};
use crate::syscalls::WriteCounter;
use crate::systems::{ClientSpec, System};

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
    /// A few seconds in all: one tiny cell per system (16 B, 1 in flight,
    /// one run each), to check that the harness works. Writes to
    /// target/courier-bench-quick unless --out is given.
    #[arg(long)]
    quick: bool,
    /// Where the results go [default: book/src/performance, or
    /// target/courier-bench-quick with --quick].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Systems to run, comma-separated [default: all].
    #[arg(long, value_delimiter = ',')]
    systems: Option<Vec<System>>,
    /// Payload sizes in bytes [default: 16,1024,65536].
    #[arg(long, value_delimiter = ',')]
    payloads: Option<Vec<usize>>,
    /// Calls in flight [default: 1,32,256].
    #[arg(long, value_delimiter = ',')]
    concurrency: Option<Vec<usize>>,
    /// Runs per cell [default: 3].
    #[arg(long)]
    repeats: Option<usize>,
    /// Warm-up per run in ms [default: 500].
    #[arg(long)]
    warmup_ms: Option<u64>,
    /// Measured window per run in ms [default: 2000].
    #[arg(long)]
    window_ms: Option<u64>,
    /// Payloads also measured with server and client sharing one core,
    /// comma-separated; `none` for none [default: 1024].
    #[arg(long, value_delimiter = ',')]
    shared_core_payloads: Option<Vec<String>>,
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
}

#[derive(Debug, Args)]
struct CallgrindArgs {
    /// Payload sizes in bytes [default: 16,1024,65536].
    #[arg(long, value_delimiter = ',')]
    payloads: Option<Vec<usize>>,
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
                microbench::callgrind(&exe, &payloads, &out)
                    .map(|()| eprintln!("wrote {}", out.join("callgrind.md").display()))
            }),
        Cmd::Render { dir } => {
            let dir = dir.unwrap_or_else(|| orchestrate::default_out(false));
            report::render(&dir)
        }
        Cmd::Server { system, workers } => systems::serve(system, workers),
        Cmd::Client(args) => systems::run_client(&ClientSpec {
            system: args.system,
            addr: args.addr,
            payload: args.payload,
            concurrency: args.concurrency,
            timing: Timing {
                warmup: Duration::from_millis(args.warmup_ms),
                window: Duration::from_millis(args.window_ms),
            },
            workers: args.workers,
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

/// The `run` command.
fn run(args: RunArgs) -> Result<(), String> {
    let quick = args.quick;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let mut machine = Machine::detect();
    let mut notes = Vec::new();
    let mut systems = args.systems.unwrap_or_else(|| System::ALL.to_vec());
    systems.retain(|s| match s.available() {
        Ok(()) => true,
        Err(why) => {
            notes.push(format!("{} skipped: {why}.", s.name()));
            false
        }
    });
    let payloads = args.payloads.unwrap_or_else(|| {
        if quick {
            vec![16]
        } else {
            vec![16, 1024, 65536]
        }
    });
    let concurrency = args
        .concurrency
        .unwrap_or_else(|| if quick { vec![1] } else { vec![1, 32, 256] });
    let shared_payloads: Vec<usize> = match args.shared_core_payloads {
        Some(list) => list.iter().filter_map(|p| p.parse().ok()).collect(),
        None if quick => Vec::new(),
        None => vec![1024],
    };
    let timing = Timing {
        warmup: Duration::from_millis(args.warmup_ms.unwrap_or(if quick { 100 } else { 500 })),
        window: Duration::from_millis(args.window_ms.unwrap_or(if quick { 200 } else { 2000 })),
    };
    let repeats = args.repeats.unwrap_or(if quick { 1 } else { 3 }).max(1);
    let split = Placement::split(&machine);
    if split.server_cpus.is_none() {
        notes.push("Processes are not pinned (taskset missing or fewer than 2 CPUs).".to_owned());
    }
    let mut placements = vec![(split, payloads.clone())];
    if !shared_payloads.is_empty() {
        match Placement::shared(&machine) {
            Some(shared) => placements.push((shared, shared_payloads)),
            None => notes.push("No shared-core runs: taskset is missing.".to_owned()),
        }
    }
    notes.push("tarpc uses its serde transport with the JSON codec (feature serde-transport-json; its other built-in codec, bincode, is unmaintained): a bytes payload travels as a JSON array of numbers.".to_owned());
    notes.push("tonic: transport::Server and Channel with default settings (HTTP/2 windows included), a hand-written prost message and service (no protoc), no router.".to_owned());
    let writes = WriteCounter::detect();
    let plan = Plan {
        systems: systems.clone(),
        concurrency: concurrency.clone(),
        repeats,
        timing,
        placements: placements.clone(),
    };
    let jobs = plan.jobs().len();
    let per_run = timing.warmup + timing.window + Duration::from_millis(700);
    eprintln!(
        "courier-bench: {jobs} runs, about {:.0} s; {}; write syscalls via {}",
        (per_run * jobs as u32).as_secs_f64(),
        placements
            .iter()
            .map(|(p, _)| format!("{}: {}", p.name, p.describe()))
            .collect::<Vec<_>>()
            .join("; "),
        writes.describe()
    );
    let runs = orchestrate::run_all(&plan, &exe, writes);
    machine.load_after = procfs::load_average();
    let cells = report::summarize(&runs);
    let ratios = report::ratios(&cells);
    let targets = report::targets(&cells, &placements[0].0.name);
    let mut command = "cargo run --release -p courier-bench -- run".to_owned();
    if quick {
        command.push_str(" --quick");
    }
    let results = Results {
        schema: report::SCHEMA,
        machine,
        config: RunConfig {
            mode: if quick { "quick" } else { "full" }.to_owned(),
            command,
            systems,
            concurrency,
            repeats,
            warmup_ms: timing.warmup.as_millis() as u64,
            window_ms: timing.window.as_millis() as u64,
            write_counter: writes.describe().to_owned(),
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
        targets,
        runs,
    };
    let out = args.out.unwrap_or_else(|| orchestrate::default_out(quick));
    report::write_all(&results, &out)?;
    println!("{}", report::ratios_markdown(&results));
    println!("{}", report::targets_markdown(&results));
    eprintln!(
        "wrote results.md, results.json and chart.svg to {}",
        out.display()
    );
    Ok(())
}
