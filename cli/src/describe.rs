//! `courier describe TARGET [SERVICE]`, and fetching schemas through
//! reflection (`courier.Reflection`, `runtime/idl/reflection.rpc`), called
//! with raw JSON calls so that nothing here depends on generated types.

use std::time::Duration;

use clap::Args;
use courier::client::{CallOptions, Channel, MethodDescriptor, RawReply};
use courier::{RpcError, Serializer, StatusCode};
use courier_cli::duration;
use courier_cli::dynamic;
use courier_cli::schema::Schema;
use serde_json::{Value, json};

use crate::connect::{self, ConnectArgs, Target};
use crate::exit::{CliError, Exit};
use crate::output::{out, outln};

/// The wire name of the reflection service.
const REFLECTION: &str = "courier.Reflection";
/// How long a reflection call may take when no timeout is given.
const REFLECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// `courier describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The server (`HOST:PORT`) or a registry URL (then SERVICE is
    /// required, to find an instance).
    pub target: String,
    /// Only the files of this service (its wire name).
    pub service: Option<String>,
    /// How long each reflection call may take.
    #[arg(long, short = 't', value_name = "DURATION", default_value = "10s", value_parser = duration::parse)]
    pub timeout: Duration,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: DescribeArgs) -> Result<Exit, CliError> {
    let target = Target::parse(&args.target)?;
    let balanced_on = match (&target, &args.service) {
        (Target::Registry(_), None) => {
            return Err(
                CliError::usage("describing through a registry needs a SERVICE")
                    .with_hint("courier describe zk://HOST:PORT/BASE hello.Greeter"),
            );
        }
        (_, Some(service)) => service.clone(),
        (Target::Address(_), None) => REFLECTION.to_owned(),
    };
    let config = connect::channel_config(&args.connect, args.timeout)?;
    let (channel, _registry) = connect::channel(&target, &balanced_on, config).await?;
    let services: Vec<(String, String)> = match &args.service {
        Some(service) => vec![(service.clone(), String::new())],
        None => list_services(&channel, args.timeout).await?,
    };
    let mut printed: Vec<String> = Vec::new();
    let mut first = true;
    for (service, _) in &services {
        let sources = fetch_sources(&channel, service, Some(args.timeout)).await?;
        for (name, source) in sources {
            if printed.contains(&name) {
                continue;
            }
            if !first {
                outln!();
            }
            first = false;
            let serving: Vec<&str> = match &args.service {
                // The file asked about comes first.
                Some(service) if printed.is_empty() => vec![service.as_str()],
                Some(_) => Vec::new(),
                None => services
                    .iter()
                    .filter(|(_, file)| *file == name)
                    .map(|(s, _)| s.as_str())
                    .collect(),
            };
            if serving.is_empty() {
                outln!("// {name}");
            } else {
                outln!("// {name}: {}", serving.join(", "));
            }
            out!("{source}");
            if !source.ends_with('\n') {
                outln!();
            }
            printed.push(name);
        }
    }
    Ok(Exit::Ok)
}

/// The services a server offers: `(wire name, file)`.
async fn list_services(
    channel: &Channel,
    timeout: Duration,
) -> Result<Vec<(String, String)>, CliError> {
    let value = reflection_call(channel, "list_services", &json!({}), Some(timeout)).await?;
    let Value::Array(items) = value else {
        return Err(unexpected("list_services"));
    };
    items
        .iter()
        .map(|item| {
            let name = item.get("name").and_then(Value::as_str);
            let file = item.get("file").and_then(Value::as_str);
            match (name, file) {
                (Some(name), Some(file)) => Ok((name.to_owned(), file.to_owned())),
                _ => Err(unexpected("list_services")),
            }
        })
        .collect()
}

/// The `.rpc` sources of `service`: its file first, then what it imports.
pub async fn fetch_sources(
    channel: &Channel,
    service: &str,
    timeout: Option<Duration>,
) -> Result<Vec<(String, String)>, CliError> {
    let value = reflection_call(
        channel,
        "file_containing",
        &json!({ "service": service }),
        timeout,
    )
    .await?;
    let Value::Array(items) = value else {
        return Err(unexpected("file_containing"));
    };
    items
        .iter()
        .map(|item| {
            let name = item.get("name").and_then(Value::as_str);
            let source = item.get("source").and_then(Value::as_str);
            match (name, source) {
                (Some(name), Some(source)) => Ok((name.to_owned(), source.to_owned())),
                _ => Err(unexpected("file_containing")),
            }
        })
        .collect()
}

/// The schema of `service`, from the server's reflection.
pub async fn fetch_schema(
    channel: &Channel,
    service: &str,
    timeout: Option<Duration>,
) -> Result<Schema, CliError> {
    let sources = fetch_sources(channel, service, timeout).await?;
    Schema::from_sources(&sources).map_err(|e| {
        CliError::transport(format!(
            "the server's sources for {service} cannot be used: {e}"
        ))
    })
}

fn unexpected(method: &str) -> CliError {
    CliError::transport(format!(
        "{REFLECTION}/{method} answered something this version does not understand"
    ))
}

/// One reflection call in JSON; its result's `value`.
async fn reflection_call(
    channel: &Channel,
    method: &str,
    args: &Value,
    timeout: Option<Duration>,
) -> Result<Value, CliError> {
    let payload = serde_json::to_vec(args).map_err(|e| CliError::usage(e.to_string()))?;
    let options = CallOptions {
        serializer: Serializer::Json,
        timeout: Some(timeout.unwrap_or(REFLECTION_TIMEOUT)),
        ..CallOptions::default()
    };
    let raw = MethodDescriptor {
        idempotent: true,
        ..MethodDescriptor::new(REFLECTION, method)
    };
    let what = format!("{REFLECTION}/{method}");
    match channel.call_raw(&raw, &payload, &options).await {
        Ok(RawReply::Ok(payload)) => dynamic::json_result(&payload)
            .map_err(|e| CliError::transport(format!("{what}: {e}")))?
            .ok_or_else(|| unexpected(method)),
        Ok(RawReply::Declared(payload)) => {
            let detail = dynamic::json_error(&payload)
                .map(|(arm, value)| format!("{arm} {value}"))
                .unwrap_or_else(|e| e.to_string());
            Err(CliError {
                exit: Exit::Status,
                message: format!("{what}: the server does not serve that service ({detail})"),
                hint: Some("`courier describe TARGET` lists the services it serves".into()),
            })
        }
        Err(RpcError::Status(status)) if status.code() == StatusCode::UnknownService => Err(CliError {
            exit: Exit::Status,
            message: format!(
                "the server does not offer reflection (status 2, unknown service {REFLECTION})"
            ),
            hint: Some(
                "turn it on in the server (ServerBuilder::enable_reflection()), or pass --idl FILE".into(),
            ),
        }),
        Err(error) => Err(CliError::from_rpc(error, &what)),
    }
}
