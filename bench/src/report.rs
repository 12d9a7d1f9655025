//! Turning runs into figures: per-cell medians and spread, ratios against
//! tonic, tarpc, the baseline build and the raw ceilings, the issue's
//! targets, and the four outputs (results.md, targets.md, results.json,
//! chart.svg).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::machine::Machine;
use crate::orchestrate::{Metrics, Pass, RunRecord};
use crate::systems::System;

/// The version of results.json's layout.
pub const SCHEMA: u32 = 2;

/// A payload size for people: `16 B`, `1 KiB`, `64 KiB`.
pub fn size_label(bytes: usize) -> String {
    if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// The medians of one cell over its repeats.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    /// The placement's name.
    pub placement: String,
    /// The system.
    pub system: System,
    /// Payload bytes.
    pub payload: usize,
    /// Calls in flight.
    pub concurrency: usize,
    /// Runs that worked.
    pub ok_runs: usize,
    /// Why the others failed.
    pub errors: Vec<String>,
    /// Median calls/s.
    pub calls_per_sec: Option<f64>,
    /// Lowest calls/s of the repeats.
    pub calls_per_sec_min: Option<f64>,
    /// Highest calls/s of the repeats.
    pub calls_per_sec_max: Option<f64>,
    /// (max − min) / median of calls/s, in percent.
    pub spread_pct: Option<f64>,
    /// Median of the runs' p50 latency, µs.
    pub p50_us: Option<f64>,
    /// Median of the runs' p99 latency, µs.
    pub p99_us: Option<f64>,
    /// Lowest p99 of the repeats, µs.
    #[serde(default)]
    pub p99_us_min: Option<f64>,
    /// Highest p99 of the repeats, µs.
    #[serde(default)]
    pub p99_us_max: Option<f64>,
    /// Client CPU seconds per 100k calls.
    pub client_cpu_s_per_100k: Option<f64>,
    /// Server CPU seconds per 100k calls.
    pub server_cpu_s_per_100k: Option<f64>,
    /// Server peak RSS, MiB.
    pub server_peak_rss_mib: Option<f64>,
    /// Client write syscalls per call (from the writes pass when there is
    /// one).
    pub client_writes_per_call: Option<f64>,
    /// Server write syscalls per call (ditto).
    pub server_writes_per_call: Option<f64>,
    /// Client bytes allocated per call.
    pub client_alloc_bytes_per_call: Option<f64>,
    /// Server bytes allocated per call.
    pub server_alloc_bytes_per_call: Option<f64>,
    /// Client allocations per call.
    pub client_allocs_per_call: Option<f64>,
    /// Server allocations per call.
    pub server_allocs_per_call: Option<f64>,
}

/// Groups runs by cell (in first-seen order) and takes medians.
pub fn summarize(runs: &[RunRecord]) -> Vec<Cell> {
    let mut order = Vec::new();
    let mut groups: BTreeMap<(String, usize, usize, System), Vec<&RunRecord>> = BTreeMap::new();
    for run in runs {
        let key = (
            run.placement.clone(),
            run.payload,
            run.concurrency,
            run.system,
        );
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(run);
    }
    order
        .into_iter()
        .map(|key| {
            let group = &groups[&key];
            let ok: Vec<&Metrics> = group
                .iter()
                .filter(|r| r.pass == Pass::Speed)
                .filter_map(|r| r.metrics.as_ref())
                .collect();
            let counted: Vec<&Metrics> = group
                .iter()
                .filter(|r| r.pass == Pass::Writes)
                .filter_map(|r| r.metrics.as_ref())
                .collect();
            // Writes come from the writes pass if the run had one (perf
            // attached), else from the speed runs (/proc, which costs
            // nothing).
            let writes = if group.iter().any(|r| r.pass == Pass::Writes) {
                &counted
            } else {
                &ok
            };
            let of = |f: &dyn Fn(&Metrics) -> Option<f64>| {
                median(ok.iter().filter_map(|m| f(m)).collect())
            };
            let writes_of = |f: &dyn Fn(&Metrics) -> Option<f64>| {
                median(writes.iter().filter_map(|m| f(m)).collect())
            };
            let rates: Vec<f64> = ok.iter().map(|m| m.calls_per_sec).collect();
            let min = rates.iter().copied().reduce(f64::min);
            let max = rates.iter().copied().reduce(f64::max);
            let med = median(rates);
            let p99s = ok.iter().map(|m| m.p99_us);
            let (placement, payload, concurrency, system) = key;
            Cell {
                placement,
                system,
                payload,
                concurrency,
                ok_runs: ok.len(),
                errors: group.iter().filter_map(|r| r.error.clone()).collect(),
                calls_per_sec: med,
                calls_per_sec_min: min,
                calls_per_sec_max: max,
                spread_pct: match (min, max, med) {
                    (Some(lo), Some(hi), Some(m)) if m > 0.0 => Some((hi - lo) / m * 100.0),
                    _ => None,
                },
                p50_us: of(&|m| Some(m.p50_us)),
                p99_us: of(&|m| Some(m.p99_us)),
                p99_us_min: p99s.clone().reduce(f64::min),
                p99_us_max: p99s.reduce(f64::max),
                client_cpu_s_per_100k: of(&|m| m.client_cpu_s_per_100k),
                server_cpu_s_per_100k: of(&|m| m.server_cpu_s_per_100k),
                server_peak_rss_mib: of(&|m| m.server_peak_rss_mib),
                client_writes_per_call: writes_of(&|m| m.client_writes_per_call),
                server_writes_per_call: writes_of(&|m| m.server_writes_per_call),
                client_alloc_bytes_per_call: of(&|m| Some(m.client_alloc_bytes_per_call)),
                server_alloc_bytes_per_call: of(&|m| m.server_alloc_bytes_per_call),
                client_allocs_per_call: of(&|m| Some(m.client_allocs_per_call)),
                server_allocs_per_call: of(&|m| m.server_allocs_per_call),
            }
        })
        .collect()
}

fn find<'a>(
    cells: &'a [Cell],
    placement: &str,
    system: System,
    payload: usize,
    c: usize,
) -> Option<&'a Cell> {
    cells.iter().find(|cell| {
        cell.placement == placement
            && cell.system == system
            && cell.payload == payload
            && cell.concurrency == c
    })
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// A courier cell against the others of its (placement, payload,
/// concurrency).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ratio {
    /// The placement's name.
    pub placement: String,
    /// The courier variant.
    pub system: System,
    /// Payload bytes.
    pub payload: usize,
    /// Calls in flight.
    pub concurrency: usize,
    /// calls/s ÷ tonic's.
    pub vs_tonic: Option<f64>,
    /// calls/s ÷ tarpc-json's.
    pub vs_tarpc: Option<f64>,
    /// calls/s ÷ tarpc-bincode's.
    #[serde(default)]
    pub vs_tarpc_bincode: Option<f64>,
    /// calls/s ÷ the RPC-shaped ceiling's (raw-rpc).
    #[serde(default)]
    pub vs_raw_rpc: Option<f64>,
    /// calls/s ÷ the raw echo's.
    pub vs_raw: Option<f64>,
    /// calls/s ÷ the same system's of the baseline build.
    #[serde(default)]
    pub vs_baseline: Option<f64>,
    /// p99 ÷ tonic's p99.
    pub p99_vs_tonic: Option<f64>,
    /// p99 ÷ the baseline build's p99.
    #[serde(default)]
    pub p99_vs_baseline: Option<f64>,
    /// p50 ÷ the std floor's p50 (one call in flight only).
    pub p50_vs_floor: Option<f64>,
    /// CPU per call (client + server) ÷ tonic's.
    pub cpu_vs_tonic: Option<f64>,
}

/// Ratios of every courier cell of this build.
pub fn ratios(cells: &[Cell]) -> Vec<Ratio> {
    let total_cpu = |c: &Cell| Some(c.client_cpu_s_per_100k? + c.server_cpu_s_per_100k?);
    cells
        .iter()
        .filter(|c| c.system.is_courier() && c.system.of_baseline().is_none())
        .map(|c| {
            let other = |s: System| find(cells, &c.placement, s, c.payload, c.concurrency);
            let rate = |s: System| other(s).and_then(|t| t.calls_per_sec);
            let tonic = other(System::Tonic);
            let baseline = c.system.baseline().and_then(other);
            Ratio {
                placement: c.placement.clone(),
                system: c.system,
                payload: c.payload,
                concurrency: c.concurrency,
                vs_tonic: ratio(c.calls_per_sec, rate(System::Tonic)),
                vs_tarpc: ratio(c.calls_per_sec, rate(System::TarpcJson)),
                vs_tarpc_bincode: ratio(c.calls_per_sec, rate(System::TarpcBincode)),
                vs_raw_rpc: ratio(c.calls_per_sec, rate(System::RawRpc)),
                vs_raw: ratio(c.calls_per_sec, rate(System::RawTokio)),
                vs_baseline: ratio(c.calls_per_sec, baseline.and_then(|b| b.calls_per_sec)),
                p99_vs_tonic: ratio(c.p99_us, tonic.and_then(|t| t.p99_us)),
                p99_vs_baseline: ratio(c.p99_us, baseline.and_then(|b| b.p99_us)),
                p50_vs_floor: ratio(c.p50_us, other(System::FloorStd).and_then(|t| t.p50_us)),
                cpu_vs_tonic: ratio(total_cpu(c), tonic.and_then(total_cpu)),
            }
        })
        .collect()
}

/// One of the issue's targets, checked against this run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    /// What is asked.
    pub goal: String,
    /// What was measured, with the figures behind it.
    pub measured: String,
    /// `Some(true)` met, `Some(false)` missed, `None` not measured.
    pub met: Option<bool>,
}

/// "No worse than the baseline" for p99 means at most this ratio: the
/// repeat-to-repeat noise of a p99 on a shared VM is larger than 5%.
pub const P99_TOLERANCE: f64 = 1.05;

/// The largest spread of calls/s over the repeats the 64 KiB target
/// allows, in percent.
pub const MAX_SPREAD_PCT: f64 = 10.0;

/// Checks the targets of issue 14 on the cells of `placement` (courier =
/// courier-protobuf of this build).
pub fn targets(cells: &[Cell], placement: &str, tonic_adaptive_from: Option<usize>) -> Vec<Target> {
    let tonic_64k = if tonic_adaptive_from.is_some_and(|from| 65536 >= from) {
        "tonic (with `http2_adaptive_window`)"
    } else {
        "tonic"
    };
    let courier = System::CourierProtobuf;
    let get = |s: System, p: usize, c: usize| find(cells, placement, s, p, c);
    let rate = |s: System, p: usize, c: usize| get(s, p, c).and_then(|c| c.calls_per_sec);
    let mut out = Vec::new();
    let not_measured = |goal: String, why: &str| Target {
        goal,
        measured: format!("not measured in this run{why}"),
        met: None,
    };
    for (other, factor) in [
        (System::Tonic, 4.0),
        (System::TarpcBincode, 2.0),
        (System::RawRpc, 0.5),
    ] {
        let goal = format!("1 KiB, 256 in flight: ≥ {factor}× {} calls/s", other.name());
        let (Some(a), Some(b)) = (rate(courier, 1024, 256), rate(other, 1024, 256)) else {
            out.push(not_measured(goal, ""));
            continue;
        };
        out.push(Target {
            goal,
            measured: format!(
                "{:.2}× ({} vs {} calls/s); {}",
                a / b,
                int(a),
                int(b),
                verdict_at_least(a / b, factor)
            ),
            met: Some(a / b >= factor),
        });
    }
    let goal = "1 KiB, 256 in flight: < 0.2 write syscalls per call on each side".to_owned();
    match get(courier, 1024, 256) {
        Some(c) if c.client_writes_per_call.is_some() || c.server_writes_per_call.is_some() => {
            let (cl, sv) = (c.client_writes_per_call, c.server_writes_per_call);
            let met = cl.is_some_and(|w| w < 0.2) && sv.is_some_and(|w| w < 0.2);
            out.push(Target {
                goal,
                measured: format!(
                    "client {}, server {}; {}",
                    opt(cl, 3),
                    opt(sv, 3),
                    if met { "met" } else { "missed" }
                ),
                met: Some(met),
            });
        }
        _ => out.push(not_measured(goal, "")),
    }
    for c in [1, 32, 256] {
        let goal = format!(
            "64 KiB, {c} in flight: ≥ 1.5× {tonic_64k} calls/s, spread ≤ {MAX_SPREAD_PCT:.0}%"
        );
        let (Some(cell), Some(b)) = (get(courier, 65536, c), rate(System::Tonic, 65536, c)) else {
            out.push(not_measured(goal, ""));
            continue;
        };
        let (Some(a), Some(spread)) = (cell.calls_per_sec, cell.spread_pct) else {
            out.push(not_measured(goal, ""));
            continue;
        };
        let fast = a / b >= 1.5;
        let steady = spread <= MAX_SPREAD_PCT;
        out.push(Target {
            goal,
            measured: format!(
                "{:.2}× ({} vs {} calls/s), spread {spread:.1}% over {} runs; {}",
                a / b,
                int(a),
                int(b),
                cell.ok_runs,
                match (fast, steady) {
                    (true, true) => "met".to_owned(),
                    (false, true) => verdict_at_least(a / b, 1.5),
                    (true, false) => "missed: the spread is too wide".to_owned(),
                    (false, false) => format!(
                        "{}, and the spread is too wide",
                        verdict_at_least(a / b, 1.5)
                    ),
                }
            ),
            met: Some(fast && steady),
        });
    }
    for c in [1, 32] {
        let goal = format!(
            "1 KiB, {c} in flight: p99 no worse than the baseline build's (≤ {P99_TOLERANCE}×)"
        );
        let baseline = System::CourierProtobufBaseline;
        let (Some(a), Some(b)) = (get(courier, 1024, c), get(baseline, 1024, c)) else {
            let any_baseline = cells.iter().any(|x| x.system == baseline);
            let why = if any_baseline {
                ""
            } else {
                " (needs --baseline-bin, see bench/ab.sh)"
            };
            out.push(not_measured(goal, why));
            continue;
        };
        let (Some(pa), Some(pb)) = (a.p99_us, b.p99_us) else {
            out.push(not_measured(goal, ""));
            continue;
        };
        let r = pa / pb;
        let range = |c: &Cell| format!("{}–{}", us(c.p99_us_min), us(c.p99_us_max));
        out.push(Target {
            goal,
            measured: format!(
                "{r:.2}× ({} µs, runs {} vs {} µs, runs {}); {}",
                us(Some(pa)),
                range(a),
                us(Some(pb)),
                range(b),
                if r <= P99_TOLERANCE {
                    "met".to_owned()
                } else {
                    format!("missed: p99 must drop {:.0}%", (1.0 - 1.0 / r) * 100.0)
                }
            ),
            met: Some(r <= P99_TOLERANCE),
        });
    }
    out
}

/// "met, N% above the bar" or "missed: courier needs N% more calls/s".
fn verdict_at_least(r: f64, factor: f64) -> String {
    if r >= factor {
        format!("met, {:.0}% above the bar", (r / factor - 1.0) * 100.0)
    } else {
        format!(
            "missed: courier needs {:.0}% more calls/s",
            (factor / r - 1.0) * 100.0
        )
    }
}

/// The instruction-count targets, from the callgrind.json that
/// `bench/callgrind.sh` wrote next to the results (if it did).
pub fn callgrind_targets(callgrind_json: Option<&str>) -> Vec<Target> {
    let goal = "1 KiB: a whole call ≤ 15,000 instructions (callgrind; one call and 64 in flight)";
    let counts = callgrind_json
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        .and_then(|v| v["counts"].as_array().cloned())
        .unwrap_or_default();
    let count = |op: &str| {
        counts
            .iter()
            .find(|c| c["op"] == op && c["payload"] == 1024)
            .and_then(|c| c["instructions"].as_f64())
    };
    match (count("courier-call"), count("courier-call-64")) {
        (None, _) => vec![Target {
            goal: goal.to_owned(),
            measured:
                "not measured: no callgrind.json with a 1 KiB courier-call (run bench/callgrind.sh)"
                    .to_owned(),
            met: None,
        }],
        (Some(one), many) => {
            let met = one <= 15_000.0 && many.is_none_or(|m| m <= 15_000.0);
            vec![Target {
                goal: goal.to_owned(),
                measured: format!(
                    "{} at one call in flight, {} at 64 (bench/callgrind.sh); {}",
                    int(one),
                    many.map_or("not counted".to_owned(), int),
                    if met { "met" } else { "missed" }
                ),
                met: Some(met),
            }]
        }
    }
}

/// How the run was configured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    /// `full` (the defaults), `custom` (some of what is measured changed on
    /// the command line) or `quick`.
    pub mode: String,
    /// The command that produced these results.
    pub command: String,
    /// Systems, in interleaving order.
    pub systems: Vec<System>,
    /// Calls in flight.
    pub concurrency: Vec<usize>,
    /// Runs per cell.
    pub repeats: usize,
    /// Warm-up per run, ms.
    pub warmup_ms: u64,
    /// Measured window per run, ms.
    pub window_ms: u64,
    /// Window of each run of the writes pass, ms (`None`: no such pass,
    /// writes were counted in the measured runs).
    #[serde(default)]
    pub writes_window_ms: Option<u64>,
    /// How write syscalls were counted.
    pub write_counter: String,
    /// tonic ran with `http2_adaptive_window(true)` from this payload on
    /// (`None`: never, as in runs before it did).
    #[serde(default)]
    pub tonic_adaptive_window_from: Option<usize>,
}

/// A placement as reported.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlacementInfo {
    /// Its name.
    pub name: String,
    /// Where the processes ran.
    pub description: String,
    /// The payloads measured with it.
    pub payloads: Vec<usize>,
}

/// Everything results.json holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The machine.
    pub machine: Machine,
    /// The configuration.
    pub config: RunConfig,
    /// The placements, in order.
    pub placements: Vec<PlacementInfo>,
    /// Notes (skipped systems, codecs).
    pub notes: Vec<String>,
    /// Medians per cell.
    pub cells: Vec<Cell>,
    /// Courier against the others.
    pub ratios: Vec<Ratio>,
    /// The issue's targets (on the first placement).
    pub targets: Vec<Target>,
    /// Every run.
    pub runs: Vec<RunRecord>,
}

fn int(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.decimals$}"))
}

fn us(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
        None => "–".to_owned(),
    }
}

fn times(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}×"))
}

/// The run's facts, for the top of results.md and targets.md.
fn run_line(results: &Results) -> String {
    let m = &results.machine;
    let c = &results.config;
    let load = |l: Option<f64>| l.map_or("?".to_owned(), |l| format!("{l:.2}"));
    format!(
        "**Run:** {} ({} mode, `{}`). **Machine:** {} CPUs ({}), {}, Linux {}; load average {} before, {} after.",
        m.started,
        c.mode,
        c.command,
        m.nproc,
        if m.cpus_allowed.is_empty() {
            "?"
        } else {
            &m.cpus_allowed
        },
        m.cpu_model,
        m.kernel,
        load(m.load_before),
        load(m.load_after),
    )
}

/// A system's name in a table row: tonic's says when it ran with HTTP/2's
/// adaptive window (large payloads, see `systems::tonic_sys`).
fn row_name(system: System, payload: usize, config: &RunConfig) -> String {
    if system == System::Tonic
        && config
            .tonic_adaptive_window_from
            .is_some_and(|from| payload >= from)
    {
        "tonic (`http2_adaptive_window`)".to_owned()
    } else {
        system.name().to_owned()
    }
}

/// results.md: the run's facts, one table per placement and payload, and
/// the ratios (the targets go to targets.md).
pub fn markdown(results: &Results) -> String {
    let mut md = String::new();
    let c = &results.config;
    let _ = writeln!(md, "<!-- Generated by `{}`: do not edit. -->\n", c.command);
    let _ = writeln!(md, "{}  ", run_line(results));
    let writes = match c.writes_window_ms {
        Some(ms) => format!(
            "{}, in a separate run per cell and system ({} ms window) after the measured ones: the tracepoints tax every syscall, so nothing is attached to the measured runs",
            c.write_counter, ms
        ),
        None => format!("{}, in the measured runs", c.write_counter),
    };
    let _ = writeln!(
        md,
        "**Method:** per run a server and a client process; {} ms warm-up, then a {} ms window; {} run(s) per cell, the systems interleaved run by run; medians shown, spread = (max − min) / median of calls/s. Write syscalls: {writes}.\n",
        c.warmup_ms, c.window_ms, c.repeats
    );
    for note in &results.notes {
        let _ = writeln!(md, "- {note}");
    }
    if !results.notes.is_empty() {
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "Columns: *×tonic*, *×raw-rpc*, *×raw*: calls/s against tonic's, the RPC-shaped ceiling's and the raw echo's in the same cell; *CPU*: CPU seconds per 100k calls (utime + stime); *RSS*: the server's peak resident memory; *writes*: write syscalls per call; *alloc*: bytes allocated per call.\n"
    );
    for placement in &results.placements {
        for &payload in &placement.payloads {
            let _ = writeln!(
                md,
                "#### {}, {}: {}\n",
                size_label(payload),
                placement.name,
                placement.description
            );
            md.push_str("| system | in flight | calls/s | spread | ×tonic | ×raw-rpc | ×raw | p50 µs | p99 µs | CPU client | CPU server | RSS server MiB | writes client | writes server | alloc B client | alloc B server |\n");
            md.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
            for &conc in &c.concurrency {
                for &system in &c.systems {
                    let Some(cell) = find(&results.cells, &placement.name, system, payload, conc)
                    else {
                        continue;
                    };
                    if cell.ok_runs == 0 {
                        let why = cell.errors.first().map_or("", String::as_str);
                        let why: String = why.chars().take(160).collect();
                        let _ = writeln!(
                            md,
                            "| {} | {} | failed: {} | | | | | | | | | | | | | |",
                            row_name(system, payload, c),
                            conc,
                            why.replace('|', "/")
                        );
                        continue;
                    }
                    let other = |s: System| {
                        find(&results.cells, &placement.name, s, payload, conc)
                            .and_then(|x| x.calls_per_sec)
                    };
                    let _ = writeln!(
                        md,
                        "| {} | {} | {} | {}% | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                        row_name(system, payload, c),
                        conc,
                        int(cell.calls_per_sec.unwrap_or(0.0)),
                        opt(cell.spread_pct, 0),
                        times(ratio(cell.calls_per_sec, other(System::Tonic))),
                        times(ratio(cell.calls_per_sec, other(System::RawRpc))),
                        times(ratio(cell.calls_per_sec, other(System::RawTokio))),
                        us(cell.p50_us),
                        us(cell.p99_us),
                        opt(cell.client_cpu_s_per_100k, 2),
                        opt(cell.server_cpu_s_per_100k, 2),
                        opt(cell.server_peak_rss_mib, 1),
                        opt(cell.client_writes_per_call, 3),
                        opt(cell.server_writes_per_call, 3),
                        cell.client_alloc_bytes_per_call.map_or("–".to_owned(), int),
                        cell.server_alloc_bytes_per_call.map_or("–".to_owned(), int),
                    );
                }
            }
            md.push('\n');
        }
    }
    md.push_str(&ratios_markdown(results));
    md
}

/// The ratios table.
pub fn ratios_markdown(results: &Results) -> String {
    let mut md = String::from(
        "#### Ratios\n\ncalls/s of courier against the others in the same cell (> 1: courier faster): tonic, tarpc with JSON and with bincode (the serde-to-serde comparison is `postcard` against *×tarpc-bincode*), the RPC-shaped ceiling, the raw echo, and the same system of the baseline build; p99 and CPU per call against tonic and p99 against the baseline (< 1: courier better); p50 against the blocking std floor.\n\n",
    );
    md.push_str("| placement | payload | in flight | courier | ×tonic | ×tarpc-json | ×tarpc-bincode | ×raw-rpc | ×raw | ×baseline | p99 ÷ tonic | p99 ÷ baseline | CPU ÷ tonic | p50 ÷ floor |\n|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in &results.ratios {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.placement,
            size_label(r.payload),
            r.concurrency,
            r.system.name().trim_start_matches("courier-"),
            times(r.vs_tonic),
            times(r.vs_tarpc),
            times(r.vs_tarpc_bincode),
            times(r.vs_raw_rpc),
            times(r.vs_raw),
            times(r.vs_baseline),
            times(r.p99_vs_tonic),
            times(r.p99_vs_baseline),
            times(r.cpu_vs_tonic),
            times(r.p50_vs_floor),
        );
    }
    md.push('\n');
    md
}

/// The targets table alone.
pub fn targets_markdown(results: &Results) -> String {
    let mut md = String::new();
    let placement = results.placements.first().map_or("?", |p| p.name.as_str());
    let _ = writeln!(
        md,
        "#### Targets ({placement} placement, courier-protobuf)\n\n| target | measured | verdict |\n|---|---|---|"
    );
    for t in &results.targets {
        let verdict = match t.met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not measured",
        };
        let _ = writeln!(md, "| {} | {} | {verdict} |", t.goal, t.measured);
    }
    md.push('\n');
    md
}

/// targets.md: the run's facts and the targets table.
pub fn targets_file(results: &Results) -> String {
    format!(
        "<!-- Generated by `{}`: do not edit. -->\n\n{}\n\n{}",
        results.config.command,
        run_line(results),
        targets_markdown(results)
    )
}

/// Every target: those of the run, and the instruction counts from the
/// callgrind.json in `dir`, if there is one.
pub fn all_targets(cells: &[Cell], placement: &str, config: &RunConfig, dir: &Path) -> Vec<Target> {
    let mut out = targets(cells, placement, config.tonic_adaptive_window_from);
    let callgrind = fs::read_to_string(dir.join("callgrind.json")).ok();
    out.extend(callgrind_targets(callgrind.as_deref()));
    out.push(Target {
        goal: "The hostile-peer bounds of issue 13 still hold".to_owned(),
        measured:
            "checked by the test suite (the runtime's hostile-peer tests), not by this harness"
                .to_owned(),
        met: None,
    });
    out
}

/// Reads `dir`/results.json and rewrites results.md, targets.md and
/// chart.svg (the ratios and targets are recomputed from the cells, so a
/// change to them needs no new run).
pub fn render(dir: &Path) -> Result<(), String> {
    let path = dir.join("results.json");
    let json =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut results: Results =
        serde_json::from_str(&json).map_err(|e| format!("{}: {e}", path.display()))?;
    let placement = results
        .placements
        .first()
        .map_or(String::new(), |p| p.name.clone());
    results.ratios = ratios(&results.cells);
    results.targets = all_targets(&results.cells, &placement, &results.config, dir);
    write_views(&results, dir)
}

/// Writes results.md, targets.md and chart.svg.
fn write_views(results: &Results, dir: &Path) -> Result<(), String> {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write("results.md", &markdown(results))?;
    write("targets.md", &targets_file(results))?;
    crate::chart::draw(results, &dir.join("chart.svg"))
}

/// Writes results.json, results.md, targets.md and chart.svg into `dir`.
pub fn write_all(results: &Results, dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let json = serde_json::to_string_pretty(results).map_err(|e| e.to_string())?;
    let path = dir.join("results.json");
    fs::write(&path, json + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    write_views(results, dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_labels() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        assert_eq!(size_label(16), "16 B");
        assert_eq!(size_label(65536), "64 KiB");
        assert_eq!(int(1234567.4), "1,234,567");
        assert_eq!(int(999.0), "999");
    }

    /// A cell with these figures (the rest empty).
    fn cell(system: System, payload: usize, c: usize, rate: f64, spread: f64, p99: f64) -> Cell {
        Cell {
            placement: "split".to_owned(),
            system,
            payload,
            concurrency: c,
            ok_runs: 5,
            errors: Vec::new(),
            calls_per_sec: Some(rate),
            calls_per_sec_min: Some(rate * (1.0 - spread / 200.0)),
            calls_per_sec_max: Some(rate * (1.0 + spread / 200.0)),
            spread_pct: Some(spread),
            p50_us: Some(p99 / 2.0),
            p99_us: Some(p99),
            p99_us_min: Some(p99),
            p99_us_max: Some(p99),
            client_cpu_s_per_100k: None,
            server_cpu_s_per_100k: None,
            server_peak_rss_mib: None,
            client_writes_per_call: None,
            server_writes_per_call: None,
            client_alloc_bytes_per_call: None,
            server_alloc_bytes_per_call: None,
            client_allocs_per_call: None,
            server_allocs_per_call: None,
        }
    }

    fn verdict(targets: &[Target], goal: &str) -> Option<bool> {
        targets
            .iter()
            .find(|t| t.goal.contains(goal))
            .unwrap_or_else(|| panic!("no target `{goal}` in {targets:?}"))
            .met
    }

    #[test]
    fn targets_are_checked_against_the_same_run() {
        use System::*;
        let mut courier = cell(CourierProtobuf, 1024, 256, 800_000.0, 5.0, 900.0);
        courier.client_writes_per_call = Some(0.05);
        courier.server_writes_per_call = Some(0.25);
        let cells = vec![
            courier,
            cell(Tonic, 1024, 256, 190_000.0, 5.0, 2000.0),
            cell(TarpcBincode, 1024, 256, 450_000.0, 5.0, 2000.0),
            cell(RawRpc, 1024, 256, 1_500_000.0, 5.0, 300.0),
            // 64 KiB: fast but unsteady at 1, steady and fast at 32, slow at 256.
            cell(CourierProtobuf, 65536, 1, 16_000.0, 25.0, 100.0),
            cell(Tonic, 65536, 1, 10_000.0, 5.0, 100.0),
            cell(CourierProtobuf, 65536, 32, 16_000.0, 8.0, 100.0),
            cell(Tonic, 65536, 32, 10_000.0, 5.0, 100.0),
            cell(CourierProtobuf, 65536, 256, 14_000.0, 8.0, 100.0),
            cell(Tonic, 65536, 256, 10_000.0, 5.0, 100.0),
            // p99: 3% worse at 1 (within the tolerance), 20% worse at 32.
            cell(CourierProtobuf, 1024, 1, 10_000.0, 5.0, 103.0),
            cell(CourierProtobufBaseline, 1024, 1, 10_000.0, 5.0, 100.0),
            cell(CourierProtobuf, 1024, 32, 10_000.0, 5.0, 120.0),
            cell(CourierProtobufBaseline, 1024, 32, 10_000.0, 5.0, 100.0),
        ];
        let t = targets(&cells, "split", Some(32 * 1024));
        assert_eq!(verdict(&t, "≥ 4× tonic"), Some(true));
        assert_eq!(verdict(&t, "≥ 2× tarpc-bincode"), Some(false));
        assert_eq!(verdict(&t, "≥ 0.5× raw-rpc"), Some(true));
        assert_eq!(verdict(&t, "write syscalls"), Some(false));
        assert_eq!(verdict(&t, "64 KiB, 1 in flight"), Some(false));
        assert_eq!(verdict(&t, "64 KiB, 32 in flight"), Some(true));
        assert_eq!(verdict(&t, "64 KiB, 256 in flight"), Some(false));
        assert_eq!(verdict(&t, "1 KiB, 1 in flight: p99"), Some(true));
        assert_eq!(verdict(&t, "1 KiB, 32 in flight: p99"), Some(false));

        // Nothing measured: every target says so instead of guessing.
        let none = targets(&[], "split", None);
        assert!(none.iter().all(|t| t.met.is_none()), "{none:?}");
        assert!(none.iter().any(|t| t.measured.contains("--baseline-bin")));
    }

    #[test]
    fn instruction_targets_come_from_callgrind_json() {
        let json = r#"{"counts": [
            {"op": "courier-call", "payload": 1024, "instructions": 14000.0},
            {"op": "courier-call-64", "payload": 1024, "instructions": 16000.0}
        ]}"#;
        let t = callgrind_targets(Some(json));
        assert_eq!(t[0].met, Some(false), "{t:?}");
        assert!(t[0].measured.contains("14,000") && t[0].measured.contains("16,000"));
        assert_eq!(callgrind_targets(None)[0].met, None);
    }

    #[test]
    fn writes_come_from_the_writes_pass_and_speed_from_the_others() {
        let metrics = |rate: f64, writes: Option<f64>| Metrics {
            calls_per_sec: rate,
            p50_us: 1.0,
            p99_us: 2.0,
            calls: 100,
            client_cpu_s_per_100k: None,
            server_cpu_s_per_100k: None,
            server_peak_rss_mib: None,
            client_writes_per_call: writes,
            server_writes_per_call: writes,
            client_alloc_bytes_per_call: 0.0,
            server_alloc_bytes_per_call: None,
            client_allocs_per_call: 0.0,
            server_allocs_per_call: None,
        };
        let run = |repeat, pass, m| RunRecord {
            placement: "split".to_owned(),
            system: System::RawRpc,
            payload: 16,
            concurrency: 1,
            repeat,
            pass,
            metrics: Some(m),
            error: None,
        };
        let runs = vec![
            run(0, Pass::Speed, metrics(100.0, None)),
            run(1, Pass::Speed, metrics(200.0, None)),
            run(0, Pass::Writes, metrics(10.0, Some(0.5))),
        ];
        let cells = summarize(&runs);
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[0].ok_runs, 2);
        assert_eq!(cells[0].calls_per_sec, Some(150.0));
        assert_eq!(cells[0].client_writes_per_call, Some(0.5));
    }
}
