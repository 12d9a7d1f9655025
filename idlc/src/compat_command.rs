//! `idlc compat OLD NEW`: reports the changes between two versions of a
//! `.rpc` tree that break old peers.

use std::path::Path;

use idlc::compat::{self, LoadError, Rule, Serializer, SerializerSet};

/// Exit status 1: a breaking change.
const BREAKING: u8 = 1;
/// Exit status 2: bad usage, I/O failure or IDL errors in a version.
const USAGE: u8 = 2;

/// The values `--allow` accepts: every rule id.
pub fn rule_ids() -> Vec<&'static str> {
    Rule::ALL.iter().map(|rule| rule.id()).collect()
}

/// The values `--serializer` accepts.
pub fn serializer_ids() -> Vec<&'static str> {
    let mut ids: Vec<&str> = Serializer::ALL.iter().map(|s| s.id()).collect();
    ids.push("all");
    ids
}

/// Runs the comparison and prints every finding and a summary to stderr.
pub fn run(old: &Path, new: &Path, allow: &[String], serializers: &[String]) -> u8 {
    // clap has already checked the values against `rule_ids` and
    // `serializer_ids`; an unknown one here is skipped, never a panic.
    let allowed: Vec<Rule> = allow.iter().filter_map(|id| Rule::from_id(id)).collect();
    let serializers = if serializers.is_empty() {
        SerializerSet::DEFAULT
    } else if serializers.iter().any(|s| s == "all") {
        SerializerSet::ALL
    } else {
        SerializerSet::of(serializers.iter().filter_map(|s| Serializer::from_id(s)))
    };
    let (old_files, new_files) = match compat::load_pair(old, new) {
        Ok(pair) => pair,
        Err(LoadError::Invalid { which, diagnostics }) => {
            eprint!("{diagnostics}");
            eprintln!(
                "idlc: the {which} version has {}; it must check cleanly to be compared",
                diagnostics.summary()
            );
            return USAGE;
        }
        Err(error) => {
            eprintln!("idlc: error: {error}");
            return USAGE;
        }
    };
    let findings = compat::compare(&old_files, &new_files, serializers);
    let (mut breaking, mut warnings, mut accepted) = (0usize, 0usize, 0usize);
    for finding in &findings {
        if allowed.contains(&finding.rule()) {
            accepted += 1;
            continue;
        }
        eprint!("{}", finding.render());
        if finding.is_breaking() {
            breaking += 1;
        } else {
            warnings += 1;
        }
    }
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("{n} {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    let details = format!(
        "{}, {} allowed; checked for {serializers}",
        plural(warnings, "warning"),
        accepted
    );
    if breaking > 0 {
        eprintln!(
            "idlc: {} ({details}); accept a rule with `--allow RULE`",
            plural(breaking, "breaking change")
        );
        BREAKING
    } else {
        eprintln!(
            "idlc: compatible: no breaking change from `{}` to `{}` ({details})",
            old.display(),
            new.display()
        );
        0
    }
}
