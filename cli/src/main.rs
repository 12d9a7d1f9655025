//! `courier`: the command-line client of Courier.
//!
//! - `courier call TARGET SERVICE/METHOD [JSON]`: calls any method with
//!   JSON arguments and prints the JSON result;
//! - `courier list REGISTRY_URL [SERVICE]`: services and their instances;
//! - `courier describe TARGET [SERVICE]`: a server's `.rpc` sources, through
//!   reflection;
//! - `courier completions SHELL`: shell completions.

mod call;
mod connect;
mod describe;
mod exit;
mod list;
mod output;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use exit::Exit;

const EXAMPLES: &str = "\
Examples:
  courier call 127.0.0.1:7070 hello.Greeter/say_hello '{\"name\":\"Bob\"}'
  courier call zk://127.0.0.1:2181/courier hello.Greeter/say_hello '{\"name\":\"Bob\"}'
  courier call --serializer protobuf --idl idl/hello.rpc 127.0.0.1:7070 hello.Greeter/sleep '{\"ms\":10}'
  echo '{\"name\":\"Ann\"}' | courier call 127.0.0.1:7070 hello.Greeter/say_hello
  courier call --repeat 10000 --concurrency 32 127.0.0.1:7070 hello.Greeter/say_hello '{\"name\":\"x\"}'
  courier list zk://127.0.0.1:2181/courier
  courier describe 127.0.0.1:7070
  courier completions bash > /etc/bash_completion.d/courier

Exit codes:
  0  the call succeeded (every call, with --repeat)
  1  the method raised a declared error (printed on stdout as {\"Type\": {...}})
  2  bad usage or bad input: nothing was sent
  3  the server answered another status (code, name and message on stderr)
  4  transport failure or timeout (cannot connect, connection lost, deadline passed)
  5  the call was made but its answer cannot be read: the schema (--idl or
     reflection) does not match the server's
  6  unavailable: the server did not run the call (status 7 overloaded,
     9 shutting down, 19 unavailable); another try (later or elsewhere) may
     succeed
With --repeat: the code of the worst outcome, 4, then 3, then 6, then 1.";

/// The command-line client of Courier.
#[derive(Debug, Parser)]
#[command(
    name = "courier",
    version,
    about = "Call Courier services with JSON, list registered instances, describe servers.",
    after_help = EXAMPLES,
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Call a method with JSON arguments and print its JSON result.
    Call(call::CallArgs),
    /// List the services of a registry and their instances.
    List(list::ListArgs),
    /// Print the `.rpc` sources of the services a server offers
    /// (needs reflection on the server).
    Describe(describe::DescribeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            return ExitCode::from(Exit::Transport as u8);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Call(args) => call::run(args).await,
            Command::List(args) => list::run(args).await,
            Command::Describe(args) => describe::run(args).await,
            Command::Completions { shell } => {
                clap_complete::generate(
                    shell,
                    &mut Cli::command(),
                    "courier",
                    &mut std::io::stdout(),
                );
                Ok(Exit::Ok)
            }
        }
    });
    // Connections and registry sessions end with the runtime; don't wait
    // for their tasks.
    runtime.shutdown_background();
    match result {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(error) => {
            error.print();
            ExitCode::from(error.exit as u8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
