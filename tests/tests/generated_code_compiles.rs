//! Every `.rpc` file `idlc check` accepts generates Rust that compiles
//! (IDL.md; issue "idlc v2"): random valid files, with unary, one-way and
//! server-streaming methods, whose names are drawn from
//! Rust keywords, standard-library and prelude names, the generated client's
//! and server's own items and locals, and every suffix the generator adds,
//! are generated and compiled together, once, with `-D warnings` and
//! clippy's default lints.
//!
//! The files of one run are one crate (one module per file), checked by
//! rustc against the `courier` this test was built with, so a run costs
//! one type check. The seed is printed; `IDLC_COMPILE_SEED=<seed>` repeats a
//! run, `IDLC_COMPILE_FILES=<n>` changes its size, `IDLC_COMPILE_KEEP=1`
//! keeps its crate. A failing run keeps
//! its crate and the `.rpc` files in a temporary directory it names: the
//! nastiest belong in `idlc/tests/fixtures/codegen/`, which the build of
//! this crate compiles on every run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Names that have bitten or could bite generated code.
const NASTY: &[&str] = &[
    // Rust keywords (raw identifiers, or `self_` for the four that can't be raw)
    "type",
    "match",
    "self",
    "Self",
    "super",
    "crate",
    "async",
    "await",
    "fn",
    "impl",
    "mod",
    "loop",
    "ref",
    "move",
    "dyn",
    "gen",
    "try",
    "yield",
    "box",
    "static",
    "union",
    "where",
    "struct",
    "enum",
    "trait",
    "use",
    "pub",
    "in",
    "as",
    "const",
    "let",
    "return",
    "abstract",
    // standard library, prelude and primitive names
    "String",
    "Vec",
    "Option",
    "Result",
    "Box",
    "Some",
    "None",
    "Ok",
    "Err",
    "Default",
    "Clone",
    "Send",
    "Sync",
    "Into",
    "From",
    "FnOnce",
    "Fn",
    "Copy",
    "Drop",
    "Iterator",
    "Debug",
    "Display",
    "Error",
    "Future",
    "Arc",
    "HashMap",
    "BTreeMap",
    "Bytes",
    "Duration",
    "std",
    "core",
    "alloc",
    "u32",
    "i64",
    "bool",
    "str",
    "f64",
    "u8",
    "usize",
    "char",
    // the client's and server's own items, and generated locals
    "new",
    "clone",
    "options",
    "with_timeout",
    "with_options",
    "with_serializer",
    "with_metadata",
    "with_hash_key",
    "channel",
    "core_mut",
    "from_core",
    "from_arc",
    "inner",
    "dispatch",
    "wire_name",
    "WIRE_NAME",
    "idl",
    "call",
    "ctx",
    "call_ctx",
    "on_result",
    "callback",
    "s",
    "a",
    "T",
    "S",
    "Impl",
    "buf",
    "tag",
    "wire_type",
    "value",
    "this",
    "len",
    "fmt",
    "f",
    "d",
    "error",
    "serialize",
    "deserialize",
    "encode_raw",
    "merge_field",
    "encoded_len",
    "clear",
    "hash_key",
    "default",
    "from",
    "into",
    "unary",
    "oneway",
    "blocking",
    "future",
    "args",
    "reply",
    "service",
    "method",
    "names",
    "other",
    // generated suffixes and names
    "Args",
    "Reply",
    "Client",
    "Server",
    "Stub",
    "StubCore",
    "Unrecognized",
    "UnrecognizedValue",
    "IDL_SOURCE",
    "IDL",
    "Kind",
    "IdlEnum",
    "IdlType",
    "IdlMessage",
    "Message",
    "Field",
    "__rt",
    "rt",
    "GetError",
    "GetArgs",
    "StoreClient",
    "get",
    "get_blocking",
    "get_future",
    "get_with_callback",
    "Get",
    "Store",
    // streams: the contextual keyword, the item sender and its fallback,
    // the runtime's stream types and calls
    "stream",
    "items",
    "item_sender",
    "items2",
    "ItemStream",
    "ItemSender",
    "BlockingItems",
    "server_stream",
    "server_stream_blocking",
    "next",
    "send",
    "into_iter",
];

/// IDL keywords: not type names (fields, methods and parameters may use
/// them).
const RESERVED: &[&str] = &[
    "bool", "i32", "i64", "u32", "u64", "f32", "f64", "string", "bytes", "list", "map", "optional",
    "void", "struct", "error", "enum", "union", "service", "const", "import", "package", "oneway",
    "throws", "true", "false",
];

/// The shape of one random file, before it is written out.
struct Gen {
    rng: SmallRng,
    /// Type names declared so far in the file: `(name, kind)`.
    types: Vec<(String, &'static str)>,
    /// Names used at the file's top level (types, services, constants).
    top: Vec<String>,
}

impl Gen {
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.random_range(0..items.len())]
    }

    /// A name: mostly nasty, sometimes plain; not in `taken`. Names of
    /// members may be IDL keywords; names of types not.
    fn name(&mut self, taken: &[String]) -> String {
        self.name_of(taken, false)
    }

    fn type_name(&mut self, taken: &[String]) -> String {
        self.name_of(taken, true)
    }

    fn name_of(&mut self, taken: &[String], for_type: bool) -> String {
        for _ in 0..20 {
            let candidate = if self.rng.random_bool(0.8) {
                (*self.pick(NASTY)).to_owned()
            } else {
                format!("n{}", self.rng.random_range(0..1000))
            };
            let reserved = for_type && RESERVED.contains(&candidate.as_str());
            if !reserved && !taken.iter().any(|t| t.eq_ignore_ascii_case(&candidate)) {
                return candidate;
            }
        }
        format!("plain{}", self.rng.random_range(0..1_000_000))
    }

    fn scalar(&mut self) -> &'static str {
        const SCALARS: &[&str] = &[
            "bool", "i32", "i64", "u32", "u64", "f32", "f64", "string", "bytes",
        ];
        SCALARS[self.rng.random_range(0..SCALARS.len())]
    }

    /// A type for a field, parameter or result; collections nest.
    fn ty(&mut self, depth: usize) -> String {
        let roll = self.rng.random_range(0..10);
        match roll {
            0..=3 => self.scalar().to_owned(),
            4 | 5 if !self.types.is_empty() => {
                let index = self.rng.random_range(0..self.types.len());
                self.types[index].0.clone()
            }
            6 | 7 if depth < 3 => format!("list<{}>", self.ty(depth + 1)),
            8 if depth < 3 => {
                let key = *self.pick(&["string", "u32", "i64", "bool", "u64", "i32"]);
                format!("map<{key}, {}>", self.ty(depth + 1))
            }
            _ => self.scalar().to_owned(),
        }
    }

    fn docs(&mut self, out: &mut String, indent: &str) {
        if self.rng.random_bool(0.3) {
            let _ = writeln!(out, "{indent}/// Doc with `code`, \"quotes\" and */ stars.");
        }
    }

    fn fields(&mut self, out: &mut String, union: bool) {
        let mut names = Vec::new();
        for tag in 1..=self.rng.random_range(if union { 1 } else { 0 }..5u32) {
            let name = self.name(&names);
            names.push(name.clone());
            let ty = self.ty(0);
            let optional = !union
                && !ty.starts_with("list")
                && !ty.starts_with("map")
                && self.rng.random_bool(0.2);
            self.docs(out, "  ");
            let _ = writeln!(
                out,
                "  {tag}: {}{ty} {name};",
                if optional { "optional " } else { "" }
            );
        }
    }

    fn file(&mut self) -> String {
        let mut out = String::from("package fuzz.generated;\n\n");
        self.types.clear();
        self.top.clear();
        if self.rng.random_bool(0.5) {
            let name = self.name(&self.top.clone());
            self.top.push(name.clone());
            let _ = writeln!(out, "const u32 {name} = 7;\n");
        }
        for _ in 0..self.rng.random_range(1..6) {
            let name = self.type_name(&self.top.clone());
            self.top.push(name.clone());
            self.docs(&mut out, "");
            match self.rng.random_range(0..4) {
                0 => {
                    let _ = writeln!(out, "enum {name} {{");
                    let mut variants = Vec::new();
                    for value in 0..self.rng.random_range(1..4) {
                        let variant = self.type_name(&variants);
                        variants.push(variant.clone());
                        let _ = writeln!(out, "  {variant} = {value};");
                    }
                    let _ = writeln!(out, "}}\n");
                    self.types.push((name, "enum"));
                }
                kind @ 1..=3 => {
                    let keyword = ["", "struct", "error", "union"][kind];
                    let _ = writeln!(out, "{keyword} {name} {{");
                    self.fields(&mut out, keyword == "union");
                    let _ = writeln!(out, "}}\n");
                    self.types.push((name, keyword));
                }
                _ => unreachable!(),
            }
        }
        let errors: Vec<String> = self
            .types
            .iter()
            .filter(|(_, kind)| *kind == "error")
            .map(|(name, _)| name.clone())
            .collect();
        for _ in 0..self.rng.random_range(1..3) {
            let name = self.type_name(&self.top.clone());
            self.top.push(name.clone());
            self.docs(&mut out, "");
            let _ = writeln!(out, "service {name} {{");
            let mut methods = Vec::new();
            for _ in 0..self.rng.random_range(1..5) {
                let method = self.name(&methods);
                methods.push(method.clone());
                let oneway = self.rng.random_bool(0.15);
                let returns = if oneway || self.rng.random_bool(0.3) {
                    "void".to_owned()
                } else if self.rng.random_bool(0.3) {
                    // A server stream: any type a result may be.
                    format!("stream {}", self.ty(0))
                } else {
                    self.ty(0)
                };
                let mut params = Vec::new();
                let mut names = Vec::new();
                let mut keyed = false;
                for tag in 1..=self.rng.random_range(0..4u32) {
                    let param = self.name(&names);
                    names.push(param.clone());
                    let ty = self.ty(0);
                    let key = !keyed
                        && matches!(ty.as_str(), "string" | "u64" | "i32" | "bool")
                        && self.rng.random_bool(0.3);
                    keyed |= key;
                    params.push(format!(
                        "{tag}: {ty} {param}{}",
                        if key { " @hash_key" } else { "" }
                    ));
                }
                let throws = if !oneway && !errors.is_empty() && self.rng.random_bool(0.5) {
                    let first = self.pick(&errors).clone();
                    format!(" throws {first}")
                } else {
                    String::new()
                };
                self.docs(&mut out, "  ");
                if self.rng.random_bool(0.2) {
                    let _ = writeln!(out, "  @idempotent");
                }
                let _ = writeln!(
                    out,
                    "  {}{returns} {method}({}){throws};",
                    if oneway { "oneway " } else { "" },
                    params.join(", ")
                );
            }
            let _ = writeln!(out, "}}\n");
        }
        out
    }
}

/// The `courier` rlib this test was built with: the newest in the
/// directory of this test's executable that compiles a probe using the
/// current generated-code API.
fn courier_rlib(deps: &Path, work: &Path) -> PathBuf {
    let mut candidates: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(deps)
        .expect("the deps directory")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libcourier-") && n.ends_with(".rlib"))
        })
        .filter_map(|path| Some((path.metadata().ok()?.modified().ok()?, path)))
        .collect();
    candidates.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    let probe = work.join("probe.rs");
    std::fs::write(
        &probe,
        "pub fn probe(core: &courier::codegen::StubCore) -> &courier::client::Channel { core.channel() }\n\
         pub type Items = courier::codegen::ItemStream<u32, courier::codegen::NoDeclaredError>;\n",
    )
    .expect("write the probe");
    for (_, rlib) in &candidates {
        if rustc(deps, rlib, &probe, work).status.success() {
            return rlib.clone();
        }
    }
    panic!(
        "no courier rlib in {} compiles the probe (candidates: {candidates:?})",
        deps.display()
    );
}

/// clippy's driver (a rustc that also runs clippy's lints) next to the
/// toolchain's `cargo`, else rustc.
fn compiler() -> PathBuf {
    let clippy = Command::new("rustup")
        .args(["which", "clippy-driver"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    match clippy {
        Some(path) if path.exists() => path,
        _ => {
            eprintln!("clippy-driver not found: checking with rustc only");
            std::env::var_os("RUSTC").map_or_else(|| "rustc".into(), PathBuf::from)
        }
    }
}

fn rustc(deps: &Path, courier: &Path, source: &Path, work: &Path) -> std::process::Output {
    Command::new(compiler())
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "lib",
            "--emit=metadata",
        ])
        .args(["-D", "warnings"])
        .arg("-L")
        .arg(format!("dependency={}", deps.display()))
        .arg("--extern")
        .arg(format!("courier={}", courier.display()))
        .arg("--out-dir")
        .arg(work)
        .arg(source)
        .output()
        .expect("rustc runs")
}

#[test]
fn random_valid_files_with_nasty_names_generate_code_that_compiles() {
    let seed = std::env::var("IDLC_COMPILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    let files: usize = std::env::var("IDLC_COMPILE_FILES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    eprintln!("seed {seed} ({files} files): IDLC_COMPILE_SEED={seed} repeats this run");
    let mut generator = Gen {
        rng: SmallRng::seed_from_u64(seed),
        types: Vec::new(),
        top: Vec::new(),
    };
    let mut krate = String::from("//! Random generated modules.\n#![warn(missing_docs)]\n");
    let mut sources = Vec::new();
    let mut rejected: std::collections::BTreeMap<String, usize> = Default::default();
    for index in 0..files {
        let text = generator.file();
        let name = format!("m{index}.rpc");
        let checked = match idlc::check_sources(&[(name.clone(), text.clone())], &[&name]) {
            Ok(checked) => checked,
            Err(diagnostics) => {
                // An invalid combination (two names that meet in Rust, a
                // struct that contains itself, ...): check says so, which is
                // all it must do.
                if std::env::var_os("IDLC_COMPILE_SHOW_REJECTED").is_some() {
                    eprintln!("{text}\n{diagnostics}");
                }
                for code in diagnostics.codes() {
                    *rejected.entry(code).or_default() += 1;
                }
                continue;
            }
        };
        let code =
            idlc::codegen::generate(&checked.files[0], &idlc::codegen::CodegenOptions::default());
        let _ = writeln!(
            krate,
            "/// `m{index}.rpc`.\npub mod m{index} {{\n{code}\n}}"
        );
        sources.push((name, text));
    }
    assert!(
        sources.len() * 2 >= files,
        "too few random files check ({} of {files}): the generator makes invalid IDL",
        sources.len()
    );
    eprintln!(
        "{} files checked and generated; the others were rejected by check: {rejected:?}",
        sources.len()
    );

    let work = tempfile::tempdir().expect("temporary directory");
    let exe = std::env::current_exe().expect("this test's executable");
    let deps = exe.parent().expect("the deps directory");
    let courier = courier_rlib(deps, work.path());
    let source = work.path().join("generated.rs");
    std::fs::write(&source, &krate).expect("write the crate");
    let started = std::time::Instant::now();
    let output = rustc(deps, &courier, &source, work.path());
    eprintln!(
        "rustc checked {} lines in {:?}",
        krate.lines().count(),
        started.elapsed()
    );
    if std::env::var_os("IDLC_COMPILE_KEEP").is_some() {
        eprintln!("kept in {}", work.keep().display());
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        return;
    }
    if !output.status.success() {
        for (name, text) in &sources {
            std::fs::write(work.path().join(name), text).expect("keep the .rpc file");
        }
        let kept = work.keep();
        panic!(
            "generated code does not compile (seed {seed}); the crate and its .rpc files are in {}:\n{}",
            kept.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
