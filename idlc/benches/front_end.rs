//! The front end on a generated 10,000-line `.rpc` file: parsing alone,
//! load + parse + check, the whole pipeline with code generation (the
//! figure the book quotes), and `idlc fmt`.
//!
//! `cargo bench -p idlc --bench front_end -- --warm-up-time 1 --measurement-time 5`
//!
//! With `FRONT_END_RPC=path` set, it also writes the file there (for
//! measuring `idlc build` and `cargo build` on it; see the book's idlc
//! chapter).

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use idlc::codegen::{CodegenOptions, generate};

/// Lines in the generated file (at least).
const LINES: usize = 10_000;

/// One group of declarations using every construct: docs, enums, structs
/// with defaults, optional, list and map fields, recursion, unions, errors,
/// and a service with `@hash_key`, `throws` and `oneway`.
fn unit(out: &mut String, i: usize) {
    let _ = write!(
        out,
        r#"/// The status of item {i}.
enum Status{i} {{
  STATUS{i}_UNKNOWN = 0;
  STATUS{i}_ACTIVE = 1;
  STATUS{i}_DONE = 2;
}}

/// Item {i}.
struct Item{i} {{
  1: u64 id;
  2: string name = "item";
  3: optional string note;
  4: list<string> tags;
  5: map<string, u32> counts;
  6: Status{i} status = STATUS{i}_ACTIVE;
  7: optional Item{i} parent;
  8: bytes payload;
  9: f64 weight = 1.5;
}}

/// One of two things.
union Choice{i} {{
  1: string text;
  2: Item{i} item;
}}

/// Raised when item {i} is missing.
error Missing{i} {{
  1: u64 id;
  2: string reason;
}}

/// The store of items {i}.
@version("1")
service Store{i} {{
  /// Reads one item.
  @idempotent
  Item{i} get(1: u64 id @hash_key) throws Missing{i};
  list<Item{i}> search(1: string query, 2: u32 limit = 20);
  void put(1: Item{i} item, 2: Choice{i} choice) throws Missing{i};
  oneway void touch(1: u64 id);
}}

"#
    );
}

/// A file of at least [`LINES`] lines.
fn source() -> String {
    let mut text = String::from("package bench.front_end;\n\n");
    let mut i = 0;
    while text.lines().count() < LINES {
        unit(&mut text, i);
        i += 1;
    }
    text
}

fn check_and_generate(path: &Path) -> usize {
    let checked = match idlc::check_files(&[path]) {
        Ok(checked) => checked,
        Err(diagnostics) => panic!("the generated IDL must check: {diagnostics:?}"),
    };
    checked
        .files
        .iter()
        .map(|file| generate(file, &CodegenOptions::default()).len())
        .sum()
}

fn front_end(c: &mut Criterion) {
    let text = source();
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("bench.rpc");
    std::fs::write(&path, &text).expect("write the generated IDL");
    if let Some(copy) = std::env::var_os("FRONT_END_RPC") {
        std::fs::write(&copy, &text).expect("write the generated IDL to FRONT_END_RPC");
    }
    eprintln!(
        "front_end: {} lines, {} bytes",
        text.lines().count(),
        text.len()
    );

    let mut group = c.benchmark_group("front_end_10k_lines");
    group.sample_size(20);
    group.bench_function("parse", |b| {
        b.iter(|| {
            black_box(idlc::parse::parse(black_box(&text)))
                .file
                .decls
                .len()
        })
    });
    group.bench_function("load_parse_check", |b| {
        b.iter(|| match idlc::check_files(&[black_box(&path)]) {
            Ok(checked) => checked.files.len(),
            Err(diagnostics) => panic!("{diagnostics:?}"),
        })
    });
    group.bench_function("parse_check_generate", |b| {
        b.iter(|| check_and_generate(black_box(&path)))
    });
    let checked = idlc::check_files(&[&path]).expect("checks");
    group.bench_function("generate", |b| {
        b.iter(|| {
            checked
                .files
                .iter()
                .map(|file| generate(black_box(file), &CodegenOptions::default()).len())
                .sum::<usize>()
        })
    });
    group.bench_function("fmt", |b| {
        b.iter(|| match idlc::format::format_source(black_box(&text)) {
            Ok(formatted) => formatted.len(),
            Err(diagnostics) => panic!("{diagnostics:?}"),
        })
    });
    group.finish();
}

criterion_group!(benches, front_end);
criterion_main!(benches);
