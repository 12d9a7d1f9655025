//! What the orchestrator reads about a child process from `/proc`: CPU
//! time (`stat`: utime + stime), peak resident memory (`status`: VmHWM),
//! and write syscalls (`io`: syscw, which counts write(2)/writev(2) but not
//! send(2)/sendmsg(2); see [`crate::syscalls`] for the exact counter).

use std::fs;
use std::process::Command;
use std::sync::OnceLock;

/// Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`,
/// 100 on every mainstream Linux).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// User plus system CPU seconds used so far by every thread of `pid`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after the
    // last ')'. Field 3 (state) is the first after it; utime and stime are
    // fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks())
}

/// The peak resident set size of `pid` so far, in KiB (VmHWM).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// write(2)-family syscalls made so far by `pid` (the `syscw` of
/// `/proc/PID/io`): write, writev, pwrite*; *not* send, sendto or sendmsg.
pub fn syscw(pid: u32) -> Option<u64> {
    let io = fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|line| line.strip_prefix("syscw:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The 1-minute load average now.
pub fn load_average() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).is_some());
        assert!(peak_rss_kib(pid).unwrap_or(0) > 0);
        assert!(load_average().is_some());
    }
}
