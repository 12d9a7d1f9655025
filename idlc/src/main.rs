//! The `idlc` command: check `.rpc` files and generate Rust modules.
//!
//! Exit codes: 0 success (warnings are printed but pass), 1 IDL errors (or,
//! with `build --check`, stale generated files; with `fmt --check`, files
//! that would be reformatted), 2 bad usage or I/O failure.

mod compat_command;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use idlc::codegen::CodegenOptions;
use idlc::{CheckOptions, Diagnostics, WriteOutcome, analyze, generate_files};

const EXAMPLES: &str = "\
Examples:
  idlc check idl/shop.rpc
      Check a file and the files it imports; print errors and warnings.
  idlc build idl/hello.rpc idl/shop.rpc --out-dir src/generated
      Write src/generated/hello.rs, shop.rs and one module per imported file
      (only files whose content changed are written).
  idlc build idl/shop.rpc --out-dir src/generated --check
      Write nothing; exit 1 if a generated file is missing or out of date.
  idlc check -I idl/common idl/shop.rpc
      Also look for imports in idl/common.
  idlc fmt idl/*.rpc
      Rewrite the files in the canonical layout (only those that change).
  idlc fmt --check idl/*.rpc
      Write nothing; exit 1 if any file would be reformatted.
  idlc compat release/idl idl
      Exit 1 if the tree idl/ breaks peers built from release/idl/.

Exit status: 0 ok (warnings allowed), 1 IDL errors, stale files, files that
would be reformatted or breaking changes, 2 usage or I/O errors (and, for
`compat`, IDL errors in either version).";

/// The Courier IDL compiler: `.rpc` files to Rust types, server traits and
/// client stubs.
#[derive(Debug, Parser)]
#[command(name = "idlc", version, about, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check .rpc files and generate one Rust module per file (and per imported file).
    #[command(after_help = EXAMPLES)]
    Build {
        /// The .rpc files to compile.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Where to write the generated `<stem>.rs` files.
        #[arg(short, long, value_name = "DIR")]
        out_dir: PathBuf,
        /// Write nothing; exit 1 if any generated file is missing or stale.
        #[arg(long)]
        check: bool,
        /// Also look for imports in DIR (repeatable).
        #[arg(short = 'I', long = "include", value_name = "DIR")]
        include: Vec<PathBuf>,
        /// Do not embed the .rpc sources in the generated modules (they
        /// are embedded by default, for server reflection).
        #[arg(long)]
        no_idl_source: bool,
    },
    /// Check .rpc files and print diagnostics; generate nothing.
    #[command(after_help = EXAMPLES)]
    Check {
        /// The .rpc files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Also look for imports in DIR (repeatable).
        #[arg(short = 'I', long = "include", value_name = "DIR")]
        include: Vec<PathBuf>,
    },
    /// Rewrite .rpc files in the canonical layout, keeping every comment.
    #[command(after_help = EXAMPLES)]
    Fmt {
        /// The .rpc files to format (imports are not followed).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Write nothing; exit 1 if any file would be reformatted.
        #[arg(long)]
        check: bool,
    },
    /// Report the changes from OLD to NEW that break peers built from OLD.
    #[command(after_help = EXAMPLES)]
    Compat {
        /// The old version: a .rpc file, or a directory of them.
        #[arg(value_name = "OLD")]
        old: PathBuf,
        /// The new version: a .rpc file, or a directory of them.
        #[arg(value_name = "NEW")]
        new: PathBuf,
        /// Accept the changes of this rule (repeatable).
        #[arg(long, value_name = "RULE", value_parser = clap::builder::PossibleValuesParser::new(compat_command::rule_ids()))]
        allow: Vec<String>,
        /// A serializer peers use (repeatable; default: protobuf, json and msgpack).
        #[arg(long, value_name = "SERIALIZER", value_parser = clap::builder::PossibleValuesParser::new(compat_command::serializer_ids()))]
        serializer: Vec<String>,
    },
}

/// Exit status 1: IDL errors or stale files.
const FAILED: u8 = 1;
/// Exit status 2: bad usage or I/O failure.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    // clap exits with 2 on usage errors and 0 for --help / --version.
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Build {
            files,
            out_dir,
            check,
            include,
            no_idl_source,
        } => {
            let codegen = CodegenOptions::default().embed_idl_source(!no_idl_source);
            build(&files, &out_dir, check, &include, &codegen)
        }
        Command::Check { files, include } => check_only(&files, &include),
        Command::Fmt { files, check } => fmt(&files, check),
        Command::Compat {
            old,
            new,
            allow,
            serializer,
        } => compat_command::run(&old, &new, &allow, &serializer),
    };
    ExitCode::from(code)
}

/// Checks that every named file and include directory exists (exit 2).
fn validate_inputs(files: &[PathBuf], include: &[PathBuf]) -> Result<CheckOptions, u8> {
    for file in files {
        if !file.is_file() {
            let reason = if file.exists() {
                "not a file"
            } else {
                "no such file"
            };
            eprintln!("idlc: error: cannot read `{}`: {reason}", file.display());
            return Err(USAGE);
        }
    }
    let mut options = CheckOptions::new();
    for dir in include {
        if !dir.is_dir() {
            eprintln!(
                "idlc: error: include directory `{}` does not exist",
                dir.display()
            );
            return Err(USAGE);
        }
        options = options.include(dir.clone());
    }
    Ok(options)
}

/// Prints diagnostics and a summary to stderr.
fn print_diagnostics(diagnostics: &Diagnostics) {
    if diagnostics.is_empty() {
        return;
    }
    eprint!("{diagnostics}");
    eprintln!("idlc: {}", diagnostics.summary());
}

fn check_only(files: &[PathBuf], include: &[PathBuf]) -> u8 {
    let options = match validate_inputs(files, include) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let analysis = analyze(files, &options);
    print_diagnostics(&analysis.diagnostics);
    if analysis.has_errors() { FAILED } else { 0 }
}

fn build(
    files: &[PathBuf],
    out_dir: &Path,
    check: bool,
    include: &[PathBuf],
    codegen: &CodegenOptions,
) -> u8 {
    let options = match validate_inputs(files, include) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let analysis = analyze(files, &options);
    print_diagnostics(&analysis.diagnostics);
    let checked = match analysis.into_result() {
        Ok(checked) => checked,
        Err(_) => return FAILED,
    };
    let generated = generate_files(&checked.files, codegen);
    if check {
        let stale: Vec<_> = generated
            .iter()
            .filter(|file| !file.is_current_in(out_dir))
            .collect();
        for file in &stale {
            eprintln!(
                "idlc: stale: `{}` is missing or out of date (generated from `{}`)",
                file.path_in(out_dir).display(),
                file.source.display()
            );
        }
        if stale.is_empty() {
            return 0;
        }
        eprintln!("idlc: run `idlc build` without `--check` to update");
        return FAILED;
    }
    if let Err(error) = std::fs::create_dir_all(out_dir) {
        eprintln!(
            "idlc: error: cannot create `{}`: {error}",
            out_dir.display()
        );
        return USAGE;
    }
    let (mut written, mut unchanged) = (0, 0);
    for file in &generated {
        match file.write_to(out_dir) {
            Ok(WriteOutcome::Written) => written += 1,
            Ok(WriteOutcome::Unchanged) => unchanged += 1,
            Err(error) => {
                eprintln!(
                    "idlc: error: cannot write `{}`: {error}",
                    file.path_in(out_dir).display()
                );
                return USAGE;
            }
        }
    }
    eprintln!("idlc: wrote {written} file(s), {unchanged} unchanged");
    0
}

/// Formats each file; files with syntax errors are reported and left alone.
fn fmt(files: &[PathBuf], check: bool) -> u8 {
    if let Err(code) = validate_inputs(files, &[]) {
        return code;
    }
    let (mut changed, mut unchanged, mut failed) = (0usize, 0usize, false);
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(error) => {
                eprintln!("idlc: error: cannot read `{}`: {error}", file.display());
                return USAGE;
            }
        };
        let name = idlc::source::display_name(file);
        let formatted = match idlc::format::format_source_named(&name, &text) {
            Ok(formatted) => formatted,
            Err(diagnostics) => {
                print_diagnostics(&diagnostics);
                eprintln!("idlc: `{name}` was not formatted");
                failed = true;
                continue;
            }
        };
        if formatted == text {
            unchanged += 1;
            continue;
        }
        changed += 1;
        if check {
            eprintln!("idlc: `{name}` would be reformatted");
        } else if let Err(error) = std::fs::write(file, formatted) {
            eprintln!("idlc: error: cannot write `{name}`: {error}");
            return USAGE;
        }
    }
    if check {
        eprintln!("idlc: {changed} file(s) would be reformatted, {unchanged} already formatted");
    } else {
        eprintln!("idlc: reformatted {changed} file(s), {unchanged} unchanged");
    }
    if failed || (check && changed > 0) {
        FAILED
    } else {
        0
    }
}
