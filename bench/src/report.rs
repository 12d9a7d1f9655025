//! Turning runs into figures: per-cell medians and spread, ratios against
//! tonic, tarpc and the raw ceiling, the targets, and the three
//! outputs (results.md, results.json, chart.svg).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::machine::Machine;
use crate::orchestrate::{Metrics, RunRecord};
use crate::systems::System;

/// The version of results.json's layout.
pub const SCHEMA: u32 = 1;

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
    /// Client CPU seconds per 100k calls.
    pub client_cpu_s_per_100k: Option<f64>,
    /// Server CPU seconds per 100k calls.
    pub server_cpu_s_per_100k: Option<f64>,
    /// Server peak RSS, MiB.
    pub server_peak_rss_mib: Option<f64>,
    /// Client write syscalls per call.
    pub client_writes_per_call: Option<f64>,
    /// Server write syscalls per call.
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
            let ok: Vec<&Metrics> = group.iter().filter_map(|r| r.metrics.as_ref()).collect();
            let of = |f: &dyn Fn(&Metrics) -> Option<f64>| {
                median(ok.iter().filter_map(|m| f(m)).collect())
            };
            let rates: Vec<f64> = ok.iter().map(|m| m.calls_per_sec).collect();
            let min = rates.iter().copied().reduce(f64::min);
            let max = rates.iter().copied().reduce(f64::max);
            let med = median(rates);
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
                client_cpu_s_per_100k: of(&|m| m.client_cpu_s_per_100k),
                server_cpu_s_per_100k: of(&|m| m.server_cpu_s_per_100k),
                server_peak_rss_mib: of(&|m| m.server_peak_rss_mib),
                client_writes_per_call: of(&|m| m.client_writes_per_call),
                server_writes_per_call: of(&|m| m.server_writes_per_call),
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
    /// calls/s ÷ tarpc's.
    pub vs_tarpc: Option<f64>,
    /// calls/s ÷ the raw echo's.
    pub vs_raw: Option<f64>,
    /// p99 ÷ tonic's p99.
    pub p99_vs_tonic: Option<f64>,
    /// p50 ÷ the std floor's p50 (one call in flight only).
    pub p50_vs_floor: Option<f64>,
    /// CPU per call (client + server) ÷ tonic's.
    pub cpu_vs_tonic: Option<f64>,
}

/// Ratios of every courier cell.
pub fn ratios(cells: &[Cell]) -> Vec<Ratio> {
    let total_cpu = |c: &Cell| Some(c.client_cpu_s_per_100k? + c.server_cpu_s_per_100k?);
    cells
        .iter()
        .filter(|c| matches!(c.system, System::CourierProtobuf | System::CourierPostcard))
        .map(|c| {
            let other = |s: System| find(cells, &c.placement, s, c.payload, c.concurrency);
            let tonic = other(System::Tonic);
            Ratio {
                placement: c.placement.clone(),
                system: c.system,
                payload: c.payload,
                concurrency: c.concurrency,
                vs_tonic: ratio(c.calls_per_sec, tonic.and_then(|t| t.calls_per_sec)),
                vs_tarpc: ratio(
                    c.calls_per_sec,
                    other(System::TarpcJson).and_then(|t| t.calls_per_sec),
                ),
                vs_raw: ratio(
                    c.calls_per_sec,
                    other(System::RawTokio).and_then(|t| t.calls_per_sec),
                ),
                p99_vs_tonic: ratio(c.p99_us, tonic.and_then(|t| t.p99_us)),
                p50_vs_floor: ratio(c.p50_us, other(System::FloorStd).and_then(|t| t.p50_us)),
                cpu_vs_tonic: ratio(total_cpu(c), tonic.and_then(total_cpu)),
            }
        })
        .collect()
}

/// One of the targets, checked against this run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    /// What is asked.
    pub goal: String,
    /// What was measured, with the figures behind it.
    pub measured: String,
    /// `Some(true)` met, `Some(false)` missed, `None` not measured.
    pub met: Option<bool>,
}

/// At most this many body-sized allocations per call and side count as
/// "one copy": one buffer the kernel reads the body into, one it is copied
/// into to be sent (plus 10% for headers and buffer rounding).
pub const ONE_COPY_BODIES: f64 = 2.2;

/// Checks the targets on the cells of `placement` (courier = protobuf).
pub fn targets(cells: &[Cell], placement: &str) -> Vec<Target> {
    let courier = System::CourierProtobuf;
    let get = |s: System, p: usize, c: usize| find(cells, placement, s, p, c);
    let mut out = Vec::new();
    let not_measured = |goal: &str| Target {
        goal: goal.to_owned(),
        measured: "not measured in this run".to_owned(),
        met: None,
    };
    for (other, factor, goal) in [
        (
            System::Tonic,
            2.0,
            "1 KiB, 256 in flight: courier ≥ 2× tonic calls/s",
        ),
        (
            System::TarpcJson,
            1.2,
            "1 KiB, 256 in flight: courier ≥ 1.2× tarpc calls/s",
        ),
        (
            System::RawTokio,
            0.75,
            "1 KiB, 256 in flight: courier ≥ 75% of the raw echo's calls/s",
        ),
    ] {
        let (Some(a), Some(b)) = (
            get(courier, 1024, 256).and_then(|c| c.calls_per_sec),
            get(other, 1024, 256).and_then(|c| c.calls_per_sec),
        ) else {
            out.push(not_measured(goal));
            continue;
        };
        let r = a / b;
        let verdict = if r >= factor {
            format!("met, {:.0}% above the bar", (r / factor - 1.0) * 100.0)
        } else {
            format!(
                "missed: courier needs {:.0}% more calls/s",
                (factor / r - 1.0) * 100.0
            )
        };
        out.push(Target {
            goal: goal.to_owned(),
            measured: format!("{r:.2}× ({} vs {} calls/s); {verdict}", int(a), int(b)),
            met: Some(r >= factor),
        });
    }
    let goal = "1 KiB, 1 in flight: courier p99 ≤ 0.7× tonic's";
    match (
        get(courier, 1024, 1).and_then(|c| c.p99_us),
        get(System::Tonic, 1024, 1).and_then(|c| c.p99_us),
    ) {
        (Some(a), Some(b)) => {
            let r = a / b;
            let verdict = if r <= 0.7 {
                "met".to_owned()
            } else {
                format!("missed: p99 must drop {:.0}%", (1.0 - 0.7 / r) * 100.0)
            };
            out.push(Target {
                goal: goal.to_owned(),
                measured: format!("{r:.2}× ({a:.1} µs vs {b:.1} µs); {verdict}"),
                met: Some(r <= 0.7),
            });
        }
        _ => out.push(not_measured(goal)),
    }
    let goal = format!(
        "64 KiB: at most one copy of the body per side (≤ {ONE_COPY_BODIES} body-sized allocations per call)"
    );
    let big: Vec<&Cell> = cells
        .iter()
        .filter(|c| c.placement == placement && c.system == courier && c.payload == 64 * 1024)
        .collect();
    if big.is_empty() {
        out.push(not_measured(&goal));
    } else {
        let body = (64 * 1024) as f64;
        let mut worst_client: f64 = 0.0;
        let mut worst_server: f64 = 0.0;
        let mut parts = Vec::new();
        for c in &big {
            let cl = c.client_alloc_bytes_per_call.unwrap_or(f64::NAN) / body;
            let sv = c.server_alloc_bytes_per_call.unwrap_or(f64::NAN) / body;
            worst_client = worst_client.max(cl);
            worst_server = worst_server.max(sv);
            parts.push(format!(
                "c={}: client {cl:.2}, server {sv:.2}",
                c.concurrency
            ));
        }
        let met = worst_client <= ONE_COPY_BODIES && worst_server <= ONE_COPY_BODIES;
        out.push(Target {
            goal,
            measured: format!(
                "body-sized allocations per call: {}; {}",
                parts.join("; "),
                if met { "met" } else { "missed" }
            ),
            met: Some(met),
        });
    }
    let goal = "256 in flight: < 0.2 write syscalls per call on each side";
    let wide: Vec<&Cell> = cells
        .iter()
        .filter(|c| c.placement == placement && c.system == courier && c.concurrency == 256)
        .collect();
    if wide.is_empty() {
        out.push(not_measured(goal));
    } else {
        let mut met = true;
        let mut parts = Vec::new();
        for c in &wide {
            let (cl, sv) = (c.client_writes_per_call, c.server_writes_per_call);
            met &= cl.is_some_and(|w| w < 0.2) && sv.is_some_and(|w| w < 0.2);
            parts.push(format!(
                "{}: client {}, server {}",
                size_label(c.payload),
                opt(cl, 3),
                opt(sv, 3)
            ));
        }
        out.push(Target {
            goal: goal.to_owned(),
            measured: format!(
                "{}; {}",
                parts.join("; "),
                if met { "met" } else { "missed" }
            ),
            met: Some(met),
        });
    }
    out
}

/// How the run was configured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    /// `full` or `quick`.
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
    /// How write syscalls were counted.
    pub write_counter: String,
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
    /// The targets (on the first placement).
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

/// results.md: the run's facts, one table per placement and payload, the
/// ratios and the targets.
pub fn markdown(results: &Results) -> String {
    let mut md = String::new();
    let m = &results.machine;
    let c = &results.config;
    let load = |l: Option<f64>| l.map_or("?".to_owned(), |l| format!("{l:.2}"));
    let _ = writeln!(md, "<!-- Generated by `{}`: do not edit. -->\n", c.command);
    let _ = writeln!(
        md,
        "**Run:** {} ({} mode). **Machine:** {} CPUs ({}), {}, Linux {}; load average {} before, {} after.  ",
        m.started,
        c.mode,
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
    );
    let _ = writeln!(
        md,
        "**Method:** per run a server and a client process; {} ms warm-up, then a {} ms window; {} run(s) per cell, the systems interleaved run by run; medians shown, spread = (max − min) / median of calls/s. Write syscalls: {}.\n",
        c.warmup_ms, c.window_ms, c.repeats, c.write_counter
    );
    for note in &results.notes {
        let _ = writeln!(md, "- {note}");
    }
    if !results.notes.is_empty() {
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "Columns: *×tonic*, *×raw*: calls/s against tonic's and the raw echo's in the same cell; *CPU*: CPU seconds per 100k calls (utime + stime); *RSS*: the server's peak resident memory; *writes*: write syscalls per call; *alloc*: bytes allocated per call.\n"
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
            md.push_str("| system | in flight | calls/s | spread | ×tonic | ×raw | p50 µs | p99 µs | CPU client | CPU server | RSS server MiB | writes client | writes server | alloc B client | alloc B server |\n");
            md.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
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
                            "| {} | {} | failed: {} | | | | | | | | | | | | |",
                            system.name(),
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
                        "| {} | {} | {} | {}% | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                        system.name(),
                        conc,
                        int(cell.calls_per_sec.unwrap_or(0.0)),
                        opt(cell.spread_pct, 0),
                        times(ratio(cell.calls_per_sec, other(System::Tonic))),
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
    md.push_str(&targets_markdown(results));
    md
}

/// The ratios table.
pub fn ratios_markdown(results: &Results) -> String {
    let mut md = String::from(
        "#### Ratios\n\ncalls/s of courier against the others in the same cell (> 1: courier faster); p99 and CPU per call against tonic (< 1: courier better); p50 against the blocking std floor.\n\n",
    );
    md.push_str("| placement | payload | in flight | courier | ×tonic | ×tarpc | ×raw | p99 ÷ tonic | CPU ÷ tonic | p50 ÷ floor |\n|---|--:|--:|---|--:|--:|--:|--:|--:|--:|\n");
    for r in &results.ratios {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.placement,
            size_label(r.payload),
            r.concurrency,
            r.system.name().trim_start_matches("courier-"),
            times(r.vs_tonic),
            times(r.vs_tarpc),
            times(r.vs_raw),
            times(r.p99_vs_tonic),
            times(r.cpu_vs_tonic),
            times(r.p50_vs_floor),
        );
    }
    md.push('\n');
    md
}

/// The targets table.
pub fn targets_markdown(results: &Results) -> String {
    let mut md = String::new();
    let placement = results.placements.first().map_or("?", |p| p.name.as_str());
    let _ = writeln!(
        md,
        "#### Targets ({placement} placement, courier with protobuf)\n\n| target | measured | verdict |\n|---|---|---|"
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

/// Reads `dir`/results.json and rewrites results.md and chart.svg.
pub fn render(dir: &Path) -> Result<(), String> {
    let path = dir.join("results.json");
    let json =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let results: Results =
        serde_json::from_str(&json).map_err(|e| format!("{}: {e}", path.display()))?;
    fs::write(dir.join("results.md"), markdown(&results))
        .map_err(|e| format!("cannot write results.md: {e}"))?;
    crate::chart::draw(&results, &dir.join("chart.svg"))
}

/// Writes results.md, results.json and chart.svg into `dir`.
pub fn write_all(results: &Results, dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let json = serde_json::to_string_pretty(results).map_err(|e| e.to_string())?;
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write("results.json", &(json + "\n"))?;
    write("results.md", &markdown(results))?;
    crate::chart::draw(results, &dir.join("chart.svg"))
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
}
