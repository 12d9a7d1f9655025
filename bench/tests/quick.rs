//! Runs the harness in quick mode (one tiny cell per system) and checks
//! that its three outputs are there and parse. No timing is asserted: this
//! only proves the harness works.

use std::process::Command;

#[test]
fn quick_run_writes_parsable_results() {
    let out = tempfile::tempdir().expect("temp dir");
    let run = Command::new(env!("CARGO_BIN_EXE_courier-bench"))
        .args(["run", "--quick", "--out"])
        .arg(out.path())
        .output()
        .expect("run courier-bench");
    assert!(
        run.status.success(),
        "courier-bench run --quick failed ({}):\n{}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );

    let json = std::fs::read_to_string(out.path().join("results.json")).expect("results.json");
    let results: serde_json::Value = serde_json::from_str(&json).expect("results.json parses");
    assert_eq!(results["config"]["mode"], "quick");
    let cells = results["cells"].as_array().expect("cells");
    let systems = results["config"]["systems"].as_array().expect("systems");
    assert!(
        systems.len() >= 5,
        "every available system runs: {systems:?}"
    );
    for system in systems {
        let cell = cells
            .iter()
            .find(|c| &c["system"] == system)
            .unwrap_or_else(|| panic!("no cell for {system}"));
        assert!(
            cell["ok_runs"].as_u64() == Some(1),
            "{system} failed: {}",
            cell["errors"]
        );
        assert!(cell["calls_per_sec"].as_f64().is_some_and(|r| r > 0.0));
        assert!(cell["p99_us"].as_f64().is_some());
    }
    assert!(results["targets"].as_array().is_some_and(|t| !t.is_empty()));

    let md = std::fs::read_to_string(out.path().join("results.md")).expect("results.md");
    assert!(md.contains("| system | in flight | calls/s"), "{md}");
    assert!(md.contains("courier-protobuf"));

    let svg = std::fs::read_to_string(out.path().join("chart.svg")).expect("chart.svg");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("courier-protobuf"));
}
