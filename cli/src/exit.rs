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
                let exit = match code {
                    StatusCode::DeadlineExceeded => Exit::Transport,
                    _ => Exit::Status,
                };
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
        _ => return None,
    })
}
