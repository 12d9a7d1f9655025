//! Durations on the command line: `250ms`, `2s`, `1m`, `1.5s`; a bare
//! number is milliseconds.

use std::time::Duration;

/// A duration that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration; write it like 250ms, 2s, 1.5s or 1m")]
pub struct BadDuration(pub String);

/// Parses `250ms`, `2s`, `1.5s`, `1m`, `100us`, or a bare number of
/// milliseconds.
pub fn parse(text: &str) -> Result<Duration, BadDuration> {
    let bad = || BadDuration(text.to_owned());
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit.trim() {
        "" | "ms" => number / 1000.0,
        "us" | "µs" => number / 1_000_000.0,
        "s" => number,
        "m" | "min" => number * 60.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("250"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("100us"), Ok(Duration::from_micros(100)));
        assert!(parse("soon").is_err());
        assert!(parse("-1s").is_err());
        assert!(parse("1h").is_err());
    }
}
