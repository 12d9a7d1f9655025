//! Runs the harness in quick mode (one tiny cell per system and runtime)
//! and checks that its outputs are there and parse; then an A/B run with
//! the harness's own binary as the baseline build. No timing is asserted:
//! this only proves the harness works.

use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str], out: &Path) -> serde_json::Value {
    let run: Output = Command::new(env!("CARGO_BIN_EXE_courier-bench"))
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run courier-bench");
    assert!(
        run.status.success(),
        "courier-bench {args:?} failed ({}):\n{}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let json = std::fs::read_to_string(out.join("results.json")).expect("results.json");
    serde_json::from_str(&json).expect("results.json parses")
}

/// The cell of `system` on `placement`, which must have worked.
fn ok_cell<'a>(
    results: &'a serde_json::Value,
    placement: &str,
    system: &str,
) -> &'a serde_json::Value {
    let cell = results["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .find(|c| c["system"] == system && c["placement"] == placement)
        .unwrap_or_else(|| panic!("no cell for {system} on {placement}"));
    assert!(
        cell["ok_runs"].as_u64() == Some(1),
        "{system} on {placement} failed: {}",
        cell["errors"]
    );
    assert!(cell["calls_per_sec"].as_f64().is_some_and(|r| r > 0.0));
    assert!(cell["p99_us"].as_f64().is_some());
    cell
}

#[test]
fn quick_run_writes_parsable_results() {
    let out = tempfile::tempdir().expect("temp dir");
    let results = run(&["run", "--quick"], out.path());
    assert_eq!(results["config"]["mode"], "quick");
    let systems: Vec<&str> = results["config"]["systems"]
        .as_array()
        .expect("systems")
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    for expected in [
        "courier-protobuf",
        "tonic",
        "tarpc-json",
        "tarpc-bincode",
        "raw-rpc",
        "raw-tokio",
        "floor-std",
    ] {
        assert!(systems.contains(&expected), "{expected} runs: {systems:?}");
    }
    let placements: Vec<&str> = results["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let first = placements[0];
    for system in &systems {
        ok_cell(&results, first, system);
    }
    // The other runtimes run every tokio system (not the blocking floor).
    if let Some(ct) = placements.iter().find(|p| p.ends_with("current-thread")) {
        for system in systems.iter().filter(|s| **s != "floor-std") {
            ok_cell(&results, ct, system);
        }
    }
    if placements.contains(&"multi-2") {
        for system in systems.iter().filter(|s| **s != "floor-std") {
            ok_cell(&results, "multi-2", system);
        }
    }
    // Writes are counted for the first placement: by perf in a run of
    // their own, or (where perf is not usable) from /proc, which does not
    // see send(2) and so may count none.
    let courier = ok_cell(&results, first, "courier-protobuf");
    let writes = courier["client_writes_per_call"].as_f64();
    let by_perf = results["config"]["write_counter"]
        .as_str()
        .is_some_and(|c| c.starts_with("perf"));
    assert!(writes.is_some_and(|w| w > 0.0 || !by_perf), "{courier}");
    let targets = results["targets"].as_array().expect("targets");
    assert!(targets.iter().any(|t| {
        t["goal"]
            .as_str()
            .is_some_and(|g| g.contains("tarpc-bincode"))
    }));

    let md = std::fs::read_to_string(out.path().join("results.md")).expect("results.md");
    assert!(md.contains("| system | in flight | calls/s"), "{md}");
    assert!(md.contains("courier-protobuf") && md.contains("raw-rpc"));
    let targets_md = std::fs::read_to_string(out.path().join("targets.md")).expect("targets.md");
    assert!(
        targets_md.contains("| target | measured | verdict |"),
        "{targets_md}"
    );

    let svg = std::fs::read_to_string(out.path().join("chart.svg")).expect("chart.svg");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("courier-protobuf"));
}

#[test]
fn baseline_rows_come_from_the_second_build() {
    let out = tempfile::tempdir().expect("temp dir");
    let results = run(
        &[
            "run",
            "--quick",
            "--systems",
            "courier-protobuf,courier-protobuf@baseline",
            "--runtimes",
            "current-thread",
            "--baseline-bin",
            env!("CARGO_BIN_EXE_courier-bench"),
        ],
        out.path(),
    );
    let first = results["placements"][0]["name"]
        .as_str()
        .expect("placement");
    ok_cell(&results, first, "courier-protobuf");
    ok_cell(&results, first, "courier-protobuf@baseline");
    // Older builds have no current-thread option: no baseline rows there.
    let cells = results["cells"].as_array().expect("cells");
    assert!(!cells.iter().any(|c| {
        c["system"] == "courier-protobuf@baseline"
            && c["placement"]
                .as_str()
                .is_some_and(|p| p.ends_with("current-thread"))
    }));
    let ratio = results["ratios"]
        .as_array()
        .expect("ratios")
        .iter()
        .find(|r| r["system"] == "courier-protobuf" && r["placement"] == first)
        .expect("ratio");
    assert!(ratio["p99_vs_baseline"].as_f64().is_some(), "{ratio}");

    let missing = Command::new(env!("CARGO_BIN_EXE_courier-bench"))
        .args([
            "run",
            "--quick",
            "--baseline-bin",
            "/nonexistent/courier-bench",
        ])
        .output()
        .expect("run courier-bench");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such file"));
}
