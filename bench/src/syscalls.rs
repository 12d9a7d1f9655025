//! Counting the write syscalls of a process over a window.
//!
//! `perf stat` on the `syscalls:sys_enter_{write,writev,sendto,sendmsg}`
//! tracepoints counts every way a socket is written (std's
//! `TcpStream::write` is send(2), not write(2)). Where perf or the
//! tracepoints are missing, `/proc/PID/io` `syscw` is the fallback: it
//! needs nothing installed but sees only write(2) and writev(2).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::procfs;

/// The tracepoints counted with perf.
const EVENTS: &str = "syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_sendto,syscalls:sys_enter_sendmsg";

/// How write syscalls are counted on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteCounter {
    /// `perf stat` on the write/writev/sendto/sendmsg tracepoints.
    Perf,
    /// `/proc/PID/io` syscw: write and writev only.
    ProcSyscw,
}

impl WriteCounter {
    /// Perf if it can count the tracepoints here, else `/proc`.
    pub fn detect() -> WriteCounter {
        let probe = Command::new("perf")
            .args(["stat", "-x", ",", "-e", EVENTS, "--", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        match probe {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stderr);
                if parse_perf_counts(&text).is_some() {
                    WriteCounter::Perf
                } else {
                    WriteCounter::ProcSyscw
                }
            }
            _ => WriteCounter::ProcSyscw,
        }
    }

    /// A sentence for the report.
    pub fn describe(self) -> &'static str {
        match self {
            WriteCounter::Perf => {
                "perf stat on the syscalls:sys_enter_{write,writev,sendto,sendmsg} tracepoints"
            }
            WriteCounter::ProcSyscw => {
                "/proc/PID/io syscw (write and writev only: send/sendto/sendmsg are not seen; perf was not usable)"
            }
        }
    }

    /// Starts counting the writes of `pid`; perf itself runs pinned to
    /// `cpus` when given (off the measured cores).
    pub fn attach(self, pid: u32, cpus: Option<&str>) -> Attached {
        match self {
            WriteCounter::Perf => {
                let mut command = match cpus {
                    Some(cpus) => {
                        let mut c = Command::new("taskset");
                        c.args(["-c", cpus, "perf"]);
                        c
                    }
                    None => Command::new("perf"),
                };
                let child = command
                    .args(["stat", "-x", ",", "-e", EVENTS, "-p", &pid.to_string()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn();
                match child {
                    Ok(child) => Attached::Perf(child),
                    Err(_) => Attached::Proc(pid, procfs::syscw(pid)),
                }
            }
            WriteCounter::ProcSyscw => Attached::Proc(pid, procfs::syscw(pid)),
        }
    }
}

/// A count in progress.
pub enum Attached {
    /// A `perf stat -p` child, stopped with SIGINT.
    Perf(Child),
    /// The pid and its syscw at the start.
    Proc(u32, Option<u64>),
}

impl Attached {
    /// Stops counting: the writes since [`WriteCounter::attach`].
    pub fn finish(self) -> Option<u64> {
        match self {
            Attached::Proc(pid, start) => Some(procfs::syscw(pid)?.saturating_sub(start?)),
            Attached::Perf(mut child) => {
                let interrupted = Command::new("kill")
                    .args(["-INT", &child.id().to_string()])
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
                if !interrupted {
                    let _ = child.kill();
                }
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                if let Ok(None) = child.try_wait() {
                    let _ = child.kill();
                }
                let out = child.wait_with_output().ok()?;
                parse_perf_counts(&String::from_utf8_lossy(&out.stderr))
            }
        }
    }
}

/// Sums the counts of `perf stat -x ,` output; `None` if no line counted.
fn parse_perf_counts(text: &str) -> Option<u64> {
    let mut total = 0;
    let mut seen = false;
    for line in text.lines() {
        let mut fields = line.split(',');
        let (Some(count), Some(_unit), Some(event)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if !event.starts_with("syscalls:") {
            continue;
        }
        if let Ok(count) = count.trim().parse::<u64>() {
            total += count;
            seen = true;
        }
    }
    seen.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_perf_csv() {
        let text = "12,,syscalls:sys_enter_write,100,100.00,,\n\
                    3,,syscalls:sys_enter_writev,100,100.00,,\n\
                    <not counted>,,syscalls:sys_enter_sendto,0,100.00,,\n";
        assert_eq!(parse_perf_counts(text), Some(15));
        assert_eq!(parse_perf_counts("garbage"), None);
    }
}
