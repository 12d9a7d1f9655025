//! What machine a run was made on, for the report.

use std::fs;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::procfs;

/// The machine and its tools, as reported with every run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// CPUs this process may run on (`nproc`).
    pub nproc: usize,
    /// The CPU model (`/proc/cpuinfo` "model name").
    pub cpu_model: String,
    /// The kernel release.
    pub kernel: String,
    /// The CPUs this process may run on (`Cpus_allowed_list`).
    pub cpus_allowed: String,
    /// The 1-minute load average when the run started.
    pub load_before: Option<f64>,
    /// The 1-minute load average when the run ended.
    pub load_after: Option<f64>,
    /// Whether `taskset` is there to pin processes.
    pub taskset: bool,
    /// The UTC time the run started.
    pub started: String,
}

impl Machine {
    /// Describes this machine now.
    pub fn detect() -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or_else(|| "unknown".to_owned(), |m| m.trim().to_owned());
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        let cpus_allowed = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .map_or_else(String::new, |v| v.trim().to_owned());
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned()),
            cpus_allowed,
            load_before: procfs::load_average(),
            load_after: None,
            taskset: Command::new("taskset")
                .arg("-V")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            started: utc_now(),
        }
    }

    /// The CPUs this process may use, in order (from `Cpus_allowed_list`).
    pub fn cpu_ids(&self) -> Vec<usize> {
        let mut ids = Vec::new();
        for part in self.cpus_allowed.split(',').filter(|p| !p.is_empty()) {
            let mut bounds = part.split('-').map(|b| b.trim().parse::<usize>());
            match (bounds.next(), bounds.next()) {
                (Some(Ok(lo)), Some(Ok(hi))) => ids.extend(lo..=hi),
                (Some(Ok(one)), None) => ids.push(one),
                _ => {}
            }
        }
        ids
    }
}

/// The time now as `YYYY-MM-DD HH:MM UTC` (from `date`, else seconds since
/// the epoch).
fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            format!("{secs} s since the epoch")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_lists() {
        let mut m = Machine::detect();
        m.cpus_allowed = "0-2,5".to_owned();
        assert_eq!(m.cpu_ids(), vec![0, 1, 2, 5]);
        m.cpus_allowed = String::new();
        assert!(m.cpu_ids().is_empty());
    }
}
