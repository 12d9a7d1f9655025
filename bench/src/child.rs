//! The line protocol between the orchestrator and its `server` / `client`
//! child processes: commands on the child's stdin, replies on its stdout,
//! one per line. Stderr is kept (its last lines) for error reports.
//!
//! | from | line | meaning |
//! |---|---|---|
//! | server | `LISTEN <addr>` | bound and serving |
//! | orchestrator → server | `MARK` | asks for the allocation counters |
//! | server | `ALLOC <bytes> <blocks>` | the counters now |
//! | client | `READY` | connected and warmed up; waits for `GO` |
//! | orchestrator → client | `GO` | start the measured window |
//! | client | `RESULT <json>` | the window's [`crate::load::ClientReport`] |
//! | either | `ERROR <text>` | failed; exits non-zero |
//!
//! A child exits when its stdin is closed (or on `EXIT`).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How many stderr lines of a child are kept for error messages.
const STDERR_TAIL: usize = 20;

/// A running child process of the harness.
pub struct ChildProc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl ChildProc {
    /// Starts `command` with piped stdio; `name` is used in errors.
    pub fn spawn(mut command: Command, name: &str) -> Result<ChildProc, String> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{name}: cannot start: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail_writer = Arc::clone(&tail);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut tail = tail_writer.lock().unwrap_or_else(|e| e.into_inner());
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        Ok(ChildProc {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            stderr: tail,
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one command line.
    pub fn send(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| self.failure(&format!("cannot send `{line}`: {e}")))
    }

    /// Waits up to `timeout` for a line starting with `word`; returns the
    /// rest of it. An `ERROR` line, the end of output or the timeout fail.
    pub fn expect(&mut self, word: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(word) {
                        return Ok(rest.trim().to_owned());
                    }
                    if let Some(error) = line.strip_prefix("ERROR") {
                        return Err(self.failure(error.trim()));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.failure(&format!("no `{word}` within {timeout:?}")));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // Give the stderr reader a moment to catch the last lines.
                    thread::sleep(Duration::from_millis(50));
                    let status = self.child.try_wait().ok().flatten();
                    return Err(self.failure(&format!(
                        "exited before `{word}` ({})",
                        status.map_or("still running".to_owned(), |s| s.to_string())
                    )));
                }
            }
        }
    }

    /// An error message naming the child, with the tail of its stderr.
    fn failure(&self, what: &str) -> String {
        let tail = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        let tail: Vec<&str> = tail.iter().map(String::as_str).collect();
        if tail.is_empty() {
            format!("{}: {what}", self.name)
        } else {
            format!("{}: {what}; stderr: {}", self.name, tail.join(" | "))
        }
    }

    /// Closes stdin (the child's signal to exit) and waits up to `grace`,
    /// then kills it.
    pub fn finish(mut self, grace: Duration) {
        self.stdin = None;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Child side: writes one reply line to stdout and flushes it.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Child side: the next command from stdin; `None` at its end (or `EXIT`).
pub fn next_command() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => {
            let line = line.trim().to_owned();
            (line != "EXIT").then_some(line)
        }
    }
}
