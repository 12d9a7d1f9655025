//! Child processes for tests: killed (and reaped) on drop, their output read
//! by threads so every wait has a deadline.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running child: stdout arrives line by line, stderr is collected (for
/// failure messages). Killed on drop: at once, or, [`with_grace`]
/// (Self::with_grace), after its stdin was closed and it had that long to
/// exit by itself.
pub struct Process {
    what: String,
    grace: Duration,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stdout_seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// How long [`Process::next_line`] waits for a child that closed its
/// stdout to exit, for the failure message.
const EXIT_WAIT: Duration = Duration::from_secs(2);

impl Process {
    /// Spawns `command` with piped stdin, stdout and stderr. `what` names
    /// it in failure messages.
    pub fn spawn(what: &str, command: &mut Command) -> Process {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {what} ({command:?}): {error}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let (sender, lines) = channel();
        let stdout_reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let collected = Arc::clone(&stderr);
        let stderr_reader = std::thread::spawn(move || {
            let mut pipe = stderr_pipe;
            let mut buffer = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buffer[..n]);
                collected.lock().expect("stderr lock").push_str(&text);
            }
        });
        Process {
            what: what.to_owned(),
            grace: Duration::ZERO,
            child,
            stdin,
            lines,
            stdout_seen: Vec::new(),
            stderr,
            readers: vec![stdout_reader, stderr_reader],
        }
    }

    /// On drop, closes the child's stdin and gives it `grace` to exit
    /// before killing it.
    pub fn with_grace(mut self, grace: Duration) -> Process {
        self.grace = grace;
        self
    }

    /// Closes the child's stdin (it sees end of file).
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// What the child wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// The next stdout line, failing the test (with the child's output) if
    /// none comes before `deadline` or stdout closes.
    pub fn next_line(&mut self, deadline: Instant) -> String {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => {
                self.stdout_seen.push(line.clone());
                line
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!("{} wrote no line in time; {}", self.what, self.report())
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.wait_until(Instant::now() + EXIT_WAIT);
                panic!(
                    "{} closed its stdout (exit: {status:?}); {}",
                    self.what,
                    self.report()
                )
            }
        }
    }

    /// Reads stdout lines until one starts with `prefix`; returns the rest
    /// of that line (the lines before it are kept for reports).
    pub fn line_starting_with(&mut self, prefix: &str, deadline: Instant) -> String {
        loop {
            let line = self.next_line(deadline);
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.to_owned();
            }
        }
    }

    /// Waits for the child to exit, up to `deadline`; `None` if it did not.
    pub fn wait_until(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the child to exit by itself before `deadline` (killing it
    /// and failing the test if it does not), and returns its status with
    /// every stdout line it wrote (those already read included).
    pub fn finish(mut self, deadline: Instant) -> (ExitStatus, Vec<String>, String) {
        self.stdin.take();
        let Some(status) = self.wait_until(deadline) else {
            let report = self.report();
            panic!("{} did not finish in time; {report}", self.what);
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        while let Ok(line) = self.lines.try_recv() {
            self.stdout_seen.push(line);
        }
        (status, std::mem::take(&mut self.stdout_seen), self.stderr())
    }

    /// What the child wrote, for a failure message.
    pub fn report(&self) -> String {
        format!(
            "its stdout so far:\n{}\nits stderr:\n{}",
            self.stdout_seen.join("\n"),
            self.stderr()
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Closing stdin asks a well-behaved child (the Java registrar) to
        // leave; anything still running after the grace period is killed.
        self.stdin.take();
        if self.grace.is_zero() || self.wait_until(Instant::now() + self.grace).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
