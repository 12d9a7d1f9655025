//! Exit codes and the errors that end a command.

use courier::{RpcError, StatusCode};

/// The exit codes of `courier` (documented in `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// The call succeeded.
    Ok = 0,
    /// The method raised a declared error.
    Declared = 1,
    /// Bad usage or bad input: nothing was sent.
    Usage = 2,
    /// The server answered another status.
    Status = 3,
    /// Transport failure or timeout.
    Transport = 4,
    /// The call was made, but its answer cannot be read with the schema
    /// (`--idl` or the server's reflection does not match the server).
    Undecodable = 5,
    /// The server did not run the call (status 7 overloaded, 9 shutting
    /// down, 19 unavailable); another try, later or elsewhere, may succeed.
    Unavailable = 6,
}

impl Exit {
    /// The exit code of a call the server answered with `code` (neither 0
    /// nor 1).
    pub fn of_status(code: StatusCode) -> Exit {
        match code {
            StatusCode::DeadlineExceeded => Exit::Transport,
            StatusCode::Overloaded | StatusCode::ShuttingDown | StatusCode::Unavailable => {
                Exit::Unavailable
            }
            _ => Exit::Status,
        }
    }
}

/// What ended a command: a message, an optional hint on how to fix it, and
/// the exit code.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
    pub hint: Option<String>,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError {
            exit: Exit::Usage,
            message: message.into(),
            hint: None,
        }
    }

    pub fn transport(message: impl Into<String>) -> CliError {
        CliError {
            exit: Exit::Transport,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> CliError {
        self.hint = Some(hint.into());
        self
    }

    /// Prints the error (and its hint) on stderr.
    pub fn print(&self) {
        eprintln!("error: {}", self.message);
        if let Some(hint) = &self.hint {
            eprintln!("hint: {hint}");
        }
    }

    /// The error of a call that ended with a status or a transport failure.
    pub fn from_rpc(error: RpcError, what: &str) -> CliError {
        match error {
            RpcError::Declared(never) => match never {},
            RpcError::Status(status) => {
                let code = status.code();
                let exit = Exit::of_status(code);
                let message = if status.message().is_empty() {
                    format!("{what}: status {} ({})", code.as_u8(), code.name())
                } else {
                    format!(
                        "{what}: status {} ({}): {}",
                        code.as_u8(),
                        code.name(),
                        status.message()
                    )
                };
                CliError {
                    exit,
                    message,
                    hint: status_hint(code).map(str::to_owned),
                }
            }
            RpcError::Transport(error) => CliError::transport(format!("{what}: {error}")),
        }
    }
}

/// How to fix a status, where there is something to say.
fn status_hint(code: StatusCode) -> Option<&'static str> {
    Some(match code {
        StatusCode::UnknownService => {
            "check the service's wire name (`package.Service[:version]`); `courier describe TARGET` lists what the server offers"
        }
        StatusCode::UnknownMethod => {
            "check the method name; `courier describe TARGET SERVICE` shows the service's methods"
        }
        StatusCode::BadRequest => {
            "the server could not decode the arguments: pass --idl FILE to check them against the schema first"
        }
        StatusCode::DeadlineExceeded => "raise --timeout, or check why the server is slow",
        StatusCode::Unauthenticated => {
            "pass credentials as metadata, e.g. -H authorization='Bearer TOKEN'"
        }
        StatusCode::Overloaded => {
            "the server is at its concurrency limit: retry later, or lower --concurrency"
        }
        StatusCode::ShuttingDown => {
            "the server is shutting down and did not run the call: call another instance, or retry once it is back"
        }
        StatusCode::InvalidArgument => {
            "the server decoded the arguments but rejected their values: fix what the message names"
        }
        StatusCode::NotFound => {
            "check the arguments: what they name (an id, a key, a name) does not exist on this server"
        }
        StatusCode::AlreadyExists => {
            "what the call would create exists already: pick another name or key, or use the existing one"
        }
        StatusCode::FailedPrecondition => {
            "the server is not in a state for this call: the same call fails again until that changes (see the message)"
        }
        StatusCode::ResourceExhausted => {
            "a quota or a limit was reached: retry later, with fewer calls at once (--concurrency) or smaller ones"
        }
        StatusCode::Unavailable => {
            "the server could not take the call on now and did not run it: retry later, or call another instance"
        }
        StatusCode::Unimplemented => {
            "the server does not implement this method: it may run an older or newer version of the service"
        }
        StatusCode::Aborted => {
            "the call was stopped by a conflict (e.g. a concurrent update): retry the whole operation"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use courier::Status;

    use super::*;

    /// The exit code and the hint of a call that ended with status `byte`.
    fn exit_of(byte: u8) -> CliError {
        let code = StatusCode::from_u8(byte);
        CliError::from_rpc(Status::new(code, "why").into(), "a.B/c")
    }

    #[test]
    fn every_status_has_its_exit_code() {
        for byte in (2..=21).chain([22, 255]) {
            let error = exit_of(byte);
            let expected = match byte {
                6 => Exit::Transport,
                7 | 9 | 19 => Exit::Unavailable,
                _ => Exit::Status,
            };
            assert_eq!(error.exit, expected, "status {byte}");
            let name = StatusCode::from_u8(byte).name();
            assert_eq!(
                error.message,
                format!("a.B/c: status {byte} ({name}): why"),
                "status {byte}"
            );
        }
        assert_eq!(Exit::Unavailable as u8, 6);
    }

    #[test]
    fn the_statuses_a_handler_answers_have_hints() {
        for byte in 14..=21 {
            assert!(exit_of(byte).hint.is_some(), "status {byte}");
        }
        let hint = |byte| exit_of(byte).hint.unwrap_or_default();
        assert!(hint(15).contains("check the arguments"), "{}", hint(15));
        assert!(hint(19).contains("retry later"), "{}", hint(19));
        assert!(hint(20).contains("older or newer version"), "{}", hint(20));
    }

    #[test]
    fn a_transport_failure_exits_4() {
        let lost = courier::TransportError::ConnectionLost("reset".to_owned());
        assert_eq!(
            CliError::from_rpc(lost.into(), "a.B/c").exit,
            Exit::Transport
        );
    }
}
