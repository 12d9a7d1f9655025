//! Printing results: JSON pretty on a terminal, compact otherwise (or as
//! asked), and plain text lines. A closed stdout (`courier describe … |
//! head`) ends the output quietly instead of panicking as `println!` does.

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

/// Writes formatted text on stdout; a write error (a closed pipe) is
/// ignored, as the reader is gone. Use through [`out!`] and [`outln!`].
pub fn write_out(text: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_fmt(text);
}

/// `print!` that does not panic when stdout is closed.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!($($arg)*))
    };
}

/// `println!` that does not panic when stdout is closed.
macro_rules! outln {
    () => {
        $crate::output::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln};
