//! The IDL front end on arbitrary text, as the `.rpc` file `fuzz.rpc`.
//!
//! Runs what `idlc check` and `idlc build` run: `parse`, then `analyze`
//! (load, imports, every check), renders every diagnostic (spans must
//! point into the text), and, when the file checks, generates its Rust.
//! Runs `check_sources` (the same front end on sources in memory) too: on
//! a file without imports both must report the same diagnostics.
//! A file that parses is also formatted: formatting must succeed and be
//! idempotent. None of it may panic.
//!
//! The file sits in a directory of this process with two real files it
//! can import (`common.rpc`, `imports_common.rpc`, from idlc's fixtures),
//! so inputs that import get past the loader.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use idlc::codegen::CodegenOptions;
use idlc::{CheckOptions, DiagnosticKind};
use libfuzzer_sys::fuzz_target;

/// Files an input may import, by name.
const IMPORTABLE: &[(&str, &str)] = &[
    (
        "common.rpc",
        include_str!("../../idlc/tests/fixtures/ok/common.rpc"),
    ),
    (
        "imports_common.rpc",
        include_str!("../../idlc/tests/fixtures/codegen/imports_common.rpc"),
    ),
];

/// This process's scratch directory, with the importable files in it.
fn scratch_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("courier-fuzz-idl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        for (name, text) in IMPORTABLE {
            std::fs::write(dir.join(name), text).expect("write an importable file");
        }
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let in_memory = std::str::from_utf8(data).ok().map(|text| {
        let parsed = idlc::parse::parse(text);
        if parsed.is_ok() {
            check_format(text);
        }
        check_in_memory(text)
    });

    // The whole front end, through a real file (non-UTF-8 text included:
    // that is a diagnostic too).
    let path = scratch_dir().join("fuzz.rpc");
    std::fs::write(&path, data).expect("write the input file");
    let analysis = idlc::analyze(&[&path], &CheckOptions::new());
    analysis.diagnostics.iter().for_each(render);
    if let Some(in_memory) = in_memory {
        // Without imports both loaders see the same single file: same
        // verdict, same diagnostics.
        if !std::str::from_utf8(data).is_ok_and(|text| text.contains("import")) {
            let on_disk: Vec<String> = analysis.diagnostics.codes();
            assert_eq!(in_memory, on_disk, "check_sources and analyze disagree");
        }
    }
    if analysis.has_errors() {
        assert!(analysis.files.is_empty(), "no models alongside errors");
        return;
    }
    assert!(
        !analysis.files.is_empty(),
        "a file without errors has a model"
    );
    for file in idlc::generate_files(&analysis.files, &CodegenOptions::default()) {
        assert!(
            !file.contents.contains("compile_error!"),
            "codegen produced code it cannot parse for a checked file:\n{}",
            file.contents
        );
    }
});

/// `check_sources`, the front end on sources in memory (used on sources
/// read from a server's reflection): the input with the importable files.
/// Returns the diagnostics' codes.
fn check_in_memory(text: &str) -> Vec<String> {
    let mut sources = vec![("fuzz.rpc".to_owned(), text.to_owned())];
    sources.extend(
        IMPORTABLE
            .iter()
            .map(|(name, text)| ((*name).to_owned(), (*text).to_owned())),
    );
    match idlc::check_sources(&sources, &["fuzz.rpc"]) {
        Ok(checked) => {
            assert!(
                !checked.files.is_empty(),
                "a file without errors has a model"
            );
            checked.warnings.iter().for_each(render);
            checked.warnings.codes()
        }
        Err(diagnostics) => {
            assert!(diagnostics.has_errors(), "an error result has errors");
            diagnostics.iter().for_each(render);
            diagnostics.codes()
        }
    }
}

fn render(diagnostic: &idlc::Diagnostic) {
    assert!(diagnostic.code().starts_with("idl::"), "{diagnostic:?}");
    let _ = diagnostic.render();
    let _ = diagnostic.one_line();
}

/// Formatting a file that parses succeeds, and formatting its output
/// changes nothing.
fn check_format(text: &str) {
    let formatted = match idlc::format::format_source(text) {
        Ok(formatted) => formatted,
        Err(diagnostics) => {
            let failed = diagnostics
                .iter()
                .any(|d| matches!(d.kind(), DiagnosticKind::FormatFailed { .. }));
            panic!(
                "formatting a file that parses failed (format_failed: {failed}):\n{}",
                diagnostics.render()
            );
        }
    };
    let again = idlc::format::format_source(&formatted).expect("formatted text formats");
    assert_eq!(again, formatted, "formatting is not idempotent");
}
