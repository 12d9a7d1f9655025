//! Printing JSON: pretty on a terminal, compact otherwise (or as asked).

use std::io::{IsTerminal, Write};

use clap::ValueEnum;
use serde_json::Value;

/// How JSON is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Pretty on a terminal, compact otherwise.
    Auto,
    /// Indented, one field a line.
    Pretty,
    /// One line.
    Compact,
}

/// Prints `value` on stdout in `format`, with a newline.
pub fn print_json(value: &Value, format: Format) {
    let pretty = match format {
        Format::Auto => std::io::stdout().is_terminal(),
        Format::Pretty => true,
        Format::Compact => false,
    };
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    // Serializing a `Value` cannot fail; a closed stdout is not worth a panic.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", text.unwrap_or_default());
    let _ = stdout.flush();
}
