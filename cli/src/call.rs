//! `courier call TARGET SERVICE/METHOD [JSON]`.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use courier::client::{CallOptions, Channel, MethodDescriptor, RawReply, ResponseMetadataCapture};
use courier::{Metadata, RpcError, Serializer, StatusCode};
use courier_cli::duration;
use courier_cli::dynamic::{self, MethodCodec};
use courier_cli::latency::Histogram;
use courier_cli::schema::{Schema, SchemaError};
use serde_json::Value;

use crate::connect::{self, ConnectArgs, Target};
use crate::describe::fetch_schema;
use crate::exit::{CliError, Exit};
use crate::output::{self, Format, outln};

/// `courier call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The server (`HOST:PORT`) or a registry URL (`zk://HOST:PORT/BASE`):
    /// then calls are balanced over every instance of the service.
    pub target: String,
    /// The method: `SERVICE/METHOD`, with the service's wire name
    /// (`hello.Greeter/say_hello`, `shop.Orders:2/get`).
    pub method: String,
    /// The arguments, a JSON object of the parameters by name
    /// (`{"name":"Bob"}`); `-` or absent: read from stdin (absent on a
    /// terminal: `{}`).
    pub json: Option<String>,
    /// `.rpc` files that declare the service: the arguments are checked
    /// against them before anything is sent (a template is shown on error).
    /// Without it the schema is asked of the server's reflection: needed
    /// for protobuf, postcard and msgpack; for json best effort (it tells
    /// oneway methods, @timeout and @idempotent).
    /// Repeat the flag (or separate with commas) for several files.
    #[arg(long, value_name = "FILE", value_delimiter = ',')]
    pub idl: Vec<PathBuf>,
    /// The serializer of the call: json (needs no schema), protobuf,
    /// postcard or msgpack (encoded from the schema).
    #[arg(long, short = 's', value_name = "NAME", default_value = "json")]
    pub serializer: Serializer,
    /// Metadata sent with the call, `KEY=VALUE`; repeatable.
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// The call's timeout (the method's @timeout, else 10s, if not given).
    #[arg(long, short = 't', value_name = "DURATION", value_parser = duration::parse)]
    pub timeout: Option<Duration>,
    /// Make the call N times and print a latency summary instead of the
    /// result.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub repeat: u64,
    /// With --repeat: how many calls are in flight at once.
    #[arg(long, short = 'c', value_name = "C", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,
    /// How the result is printed.
    #[arg(long, value_enum, default_value = "auto")]
    pub output: Format,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// The timeout of a call whose flags and method set none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A call ready to send.
struct Prepared {
    service: String,
    method: String,
    payload: Vec<u8>,
    oneway: bool,
    /// A server-streaming method (`stream` result): its items are printed
    /// as they come.
    stream: bool,
    idempotent: bool,
    default_timeout: Option<Duration>,
}

impl Prepared {
    /// The method called: a descriptor that borrows the names (nothing is
    /// kept after the call).
    fn method(&self) -> MethodDescriptor<'_> {
        MethodDescriptor {
            service: &self.service,
            method: &self.method,
            idempotent: self.idempotent,
            default_timeout: self.default_timeout,
        }
    }
}

pub async fn run(args: CallArgs) -> Result<Exit, CliError> {
    let target = Target::parse(&args.target)?;
    let (service, method) = split_method(&args.method)?;
    let json = read_arguments(args.json.as_deref())?;
    let metadata = parse_headers(&args.headers)?;
    let serializer = args.serializer;
    let mut schema = if args.idl.is_empty() {
        None
    } else {
        Some(Schema::from_files(&args.idl).map_err(|e| schema_error(e, &args.idl))?)
    };
    // With --idl, checked and encoded before connecting: bad arguments
    // never reach a server.
    let mut prepared = match &schema {
        Some(schema) => Some(prepare(schema, service, method, serializer, &json)?),
        None => None,
    };
    let config = connect::channel_config(&args.connect, DEFAULT_TIMEOUT)?;
    let (channel, _registry) = connect::channel(&target, service, config).await?;
    if schema.is_none() {
        match fetch_schema(&channel, service, args.timeout).await {
            Ok(fetched) => schema = Some(fetched),
            Err(e) if serializer != Serializer::Json => {
                return Err(e.with_hint(format!(
                    "{} needs the schema: pass --idl FILE, or use --serializer json",
                    serializer.name()
                )));
            }
            // JSON needs no schema: reflection only tells whether the
            // method is oneway, its @timeout and @idempotent. A server
            // without it is called as before.
            Err(_) => {}
        }
        // A reflected schema without the method: let the server answer.
        if serializer == Serializer::Json
            && schema
                .as_ref()
                .is_some_and(|s| s.method(service, method).is_err())
        {
            schema = None;
        }
    }
    let prepared = match (prepared.take(), &schema) {
        (Some(prepared), _) => prepared,
        (None, Some(schema)) => prepare(schema, service, method, serializer, &json)?,
        (None, None) => Prepared {
            service: service.to_owned(),
            method: method.to_owned(),
            payload: serde_json::to_vec(&json).map_err(|e| CliError::usage(e.to_string()))?,
            oneway: false,
            stream: false,
            idempotent: false,
            default_timeout: None,
        },
    };
    let codec = match &schema {
        Some(schema) => Some(
            MethodCodec::new(schema, service, method)
                .map_err(|e| CliError::usage(e.to_string()))?,
        ),
        None => None,
    };
    let response_metadata = ResponseMetadataCapture::new();
    let options = CallOptions {
        serializer,
        timeout: args.timeout,
        metadata,
        hash_key: None,
        response_metadata: (args.repeat <= 1).then(|| response_metadata.clone()),
    };
    if args.repeat > 1 && prepared.stream {
        return Err(CliError::usage(format!(
            "{service}/{method} is a server-streaming method: --repeat measures unary calls"
        )));
    }
    if args.repeat > 1 {
        return repeat(
            &channel,
            Arc::new(prepared),
            options,
            args.repeat,
            args.concurrency,
        )
        .await;
    }
    let what = format!("{service}/{method}");
    if let (true, Some(codec)) = (prepared.stream, &codec) {
        return stream_items(
            &channel,
            &prepared,
            &options,
            codec,
            &what,
            &response_metadata,
        )
        .await;
    }
    if prepared.oneway {
        channel
            .oneway_raw(&prepared.method(), &prepared.payload, &options)
            .await
            .map_err(|e| CliError::from_rpc(e, &what))?;
        eprintln!("sent (one-way: no answer comes back)");
        return Ok(Exit::Ok);
    }
    let reply = channel
        .call_raw(&prepared.method(), &prepared.payload, &options)
        .await;
    print_response_metadata(response_metadata.take());
    let reply = reply.map_err(|e| {
            let deadline = matches!(&e, RpcError::Status(s) if s.code() == StatusCode::DeadlineExceeded);
            let error = CliError::from_rpc(e, &what);
            if deadline && schema.is_none() {
                // Without a schema a oneway method looks like one whose
                // answer never comes.
                error.with_hint(
                    "no schema says whether the method is oneway (no answer ever comes): pass --idl FILE, or enable reflection in the server; else raise --timeout",
                )
            } else {
                error
            }
        })?;
    let undecodable = |e: dynamic::DynError| {
        CliError {
        exit: Exit::Undecodable,
        message: format!("the call was made, but its answer cannot be read: {what}: {e}"),
        hint: Some(
            "the schema (--idl, or the server's reflection) does not match the server's: get the server's .rpc files (`courier describe TARGET SERVICE`)".into(),
        ),
    }
    };
    match reply {
        RawReply::Ok(payload) => {
            let value = match &codec {
                Some(codec) => codec.decode_result(serializer, &payload),
                None => dynamic::json_result(&payload),
            }
            .map_err(undecodable)?;
            if let Some(value) = value {
                output::print_json(&value, args.output);
            }
            Ok(Exit::Ok)
        }
        RawReply::Declared(payload) => {
            let (name, value) = match &codec {
                Some(codec) => codec.decode_error(serializer, &payload),
                // Without a schema the type's name is rebuilt from the
                // error message's field name (`empty_name` → `EmptyName`).
                None => dynamic::json_error(&payload).map(|(arm, value)| {
                    (
                        heck::ToUpperCamelCase::to_upper_camel_case(arm.as_str()),
                        value,
                    )
                }),
            }
            .map_err(undecodable)?;
            eprintln!("error: {what} raised the declared error {name}");
            let mut object = serde_json::Map::new();
            object.insert(name, value);
            output::print_json(&Value::Object(object), args.output);
            Ok(Exit::Declared)
        }
    }
}

/// Calls a server-streaming method: prints each item as one line of
/// compact JSON as it comes (stdout is flushed after each), then ends as
/// a unary call does with its outcome (a declared error on stdout, exit 1;
/// a status or failure as an error). The response metadata, which comes
/// before the first item, is printed on stderr at the end.
async fn stream_items(
    channel: &Channel,
    prepared: &Prepared,
    options: &CallOptions,
    codec: &MethodCodec<'_>,
    what: &str,
    response_metadata: &ResponseMetadataCapture,
) -> Result<Exit, CliError> {
    let serializer = options.serializer;
    let mut items = channel
        .open_stream_raw(&prepared.method(), &prepared.payload, options)
        .await
        .map_err(|e| CliError::from_rpc(e, what))?;
    let undecodable = |e: dynamic::DynError| {
        CliError {
        exit: Exit::Undecodable,
        message: format!("the stream's items cannot be read: {what}: {e}"),
        hint: Some(
            "the schema (--idl, or the server's reflection) does not match the server's: get the server's .rpc files (`courier describe TARGET SERVICE`)".into(),
        ),
    }
    };
    let mut count = 0u64;
    let end = loop {
        match items.next().await {
            Some(Ok(RawReply::Ok(item))) => {
                let value = codec.decode_item(serializer, &item).map_err(undecodable)?;
                output::print_json(&value, Format::Compact);
                count += 1;
            }
            Some(Ok(RawReply::Declared(error))) => break Ok(Some(error)),
            Some(Err(error)) => break Err(error),
            None => break Ok(None),
        }
    };
    print_response_metadata(response_metadata.take());
    match end {
        Ok(None) => Ok(Exit::Ok),
        Ok(Some(payload)) => {
            let (name, value) = codec
                .decode_error(serializer, &payload)
                .map_err(undecodable)?;
            eprintln!("error: {what} raised the declared error {name} after {count} items");
            let mut object = serde_json::Map::new();
            object.insert(name, value);
            output::print_json(&Value::Object(object), Format::Compact);
            Ok(Exit::Declared)
        }
        Err(error) => Err(CliError::from_rpc(error, what)),
    }
}

/// Prints the response metadata the server sent, one `< key: value` line
/// each, on stderr (stdout keeps the result alone), with control
/// characters escaped: a server's text never drives the terminal.
fn print_response_metadata(metadata: Option<Metadata>) {
    for (key, value) in metadata.iter().flat_map(|metadata| metadata.iter()) {
        eprintln!("< {}: {}", key.escape_debug(), value.escape_debug());
    }
}

/// Checks the arguments against the schema and encodes them.
fn prepare(
    schema: &Schema,
    service: &str,
    method: &str,
    serializer: Serializer,
    json: &Value,
) -> Result<Prepared, CliError> {
    let codec = MethodCodec::new(schema, service, method).map_err(|e| {
        CliError::usage(e.to_string()).with_hint("the wire name is `package.Service` (plus `:version`); the method name is as in the .rpc file")
    })?;
    let payload = codec.encode_args(serializer, json).map_err(|e| {
        let template = serde_json::to_string(&codec.args_template()).unwrap_or_default();
        CliError::usage(format!("bad arguments for {service}/{method}: {e}")).with_hint(format!(
            "the method is `{}`; its arguments look like\n  {template}",
            codec.signature()
        ))
    })?;
    let m = codec.method().method;
    Ok(Prepared {
        service: service.to_owned(),
        method: method.to_owned(),
        payload,
        oneway: m.oneway,
        stream: codec.is_server_stream(),
        idempotent: m.idempotent,
        default_timeout: m.timeout_ms.map(Duration::from_millis),
    })
}

fn schema_error(error: SchemaError, files: &[PathBuf]) -> CliError {
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    CliError::usage(format!("cannot use --idl {}: {error}", names.join(" ")))
        .with_hint("`idlc check FILE` shows the same diagnostics")
}

/// `SERVICE/METHOD` split at the last `/`.
fn split_method(text: &str) -> Result<(&str, &str), CliError> {
    match text.rsplit_once('/') {
        Some((service, method)) if !service.is_empty() && !method.is_empty() => {
            Ok((service, method))
        }
        _ => Err(CliError::usage(format!("bad method `{text}`")).with_hint(
            "write SERVICE/METHOD with the service's wire name, e.g. hello.Greeter/say_hello",
        )),
    }
}

/// The JSON arguments: the argument, or stdin.
fn read_arguments(arg: Option<&str>) -> Result<Value, CliError> {
    let (text, source) = match arg {
        Some("-") | None => {
            if arg.is_none() && std::io::stdin().is_terminal() {
                ("{}".to_owned(), "the arguments are")
            } else {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text).map_err(|e| {
                    CliError::usage(format!("cannot read the arguments from stdin: {e}"))
                })?;
                (text, "the arguments read from stdin are")
            }
        }
        Some(text) => (text.to_owned(), "the JSON argument is"),
    };
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        CliError::usage(format!(
            "{source} not valid JSON (line {}, column {}): {e}",
            e.line(),
            e.column()
        ))
        .with_hint("pass one JSON object of the parameters by name, quoted for the shell: '{\"name\":\"Bob\"}'")
    })?;
    if !value.is_object() {
        return Err(CliError::usage(format!(
            "{source} not a JSON object of the parameters by name"
        ))
        .with_hint("e.g. '{\"name\":\"Bob\"}'; a method without parameters takes '{}'"));
    }
    Ok(value)
}

/// `-H KEY=VALUE` flags as metadata.
fn parse_headers(headers: &[String]) -> Result<Metadata, CliError> {
    let mut metadata = Metadata::new();
    for header in headers {
        let Some((key, value)) = header.split_once('=') else {
            return Err(CliError::usage(format!("bad header `{header}`"))
                .with_hint("write -H KEY=VALUE, e.g. -H authorization='Bearer TOKEN'"));
        };
        if key.is_empty() {
            return Err(CliError::usage(format!(
                "header `{header}` has an empty key"
            )));
        }
        metadata.insert(key, value);
    }
    Ok(metadata)
}

/// How one of many calls ended, from the best to the worst: `--repeat`
/// exits with the code of the worst outcome it met. A definite status (3)
/// is worse than a call the server did not run (6): exit 6 says another
/// try may succeed, which is not so once any call got a definite answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    Declared,
    Unavailable,
    Status,
    Transport,
}

impl Outcome {
    /// Every outcome, in the order of [`Outcome`] (its index in a count).
    const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::Declared,
        Outcome::Unavailable,
        Outcome::Status,
        Outcome::Transport,
    ];

    /// How a call ended, with the exit code a single call would have.
    fn of(result: &Result<RawReply, RpcError>) -> Outcome {
        match result {
            Ok(RawReply::Ok(_)) => Outcome::Ok,
            Ok(RawReply::Declared(_)) => Outcome::Declared,
            Err(RpcError::Status(status)) => match Exit::of_status(status.code()) {
                Exit::Unavailable => Outcome::Unavailable,
                Exit::Transport => Outcome::Transport,
                _ => Outcome::Status,
            },
            Err(_) => Outcome::Transport,
        }
    }

    fn exit(self) -> Exit {
        match self {
            Outcome::Ok => Exit::Ok,
            Outcome::Declared => Exit::Declared,
            Outcome::Unavailable => Exit::Unavailable,
            Outcome::Status => Exit::Status,
            Outcome::Transport => Exit::Transport,
        }
    }

    /// The exit code of many calls: that of the worst outcome counted.
    fn worst(counts: &[u64; 5]) -> Exit {
        Outcome::ALL
            .into_iter()
            .zip(counts)
            .filter(|(_, n)| **n > 0)
            .map(|(outcome, _)| outcome)
            .max()
            .unwrap_or(Outcome::Ok)
            .exit()
    }
}

/// `--repeat N --concurrency C`: the calls, a progress bar on a terminal,
/// and a summary.
async fn repeat(
    channel: &Channel,
    prepared: Arc<Prepared>,
    options: CallOptions,
    total: u64,
    concurrency: u32,
) -> Result<Exit, CliError> {
    let progress = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} calls, {per_sec}, eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let next = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Histogram::new());
    let options = Arc::new(options);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..u64::from(concurrency).min(total) {
        let channel = channel.clone();
        let prepared = Arc::clone(&prepared);
        let options = Arc::clone(&options);
        let next = Arc::clone(&next);
        let progress = progress.clone();
        let latencies = Arc::clone(&latencies);
        workers.spawn(async move {
            let mut outcomes = [0u64; Outcome::ALL.len()];
            let mut first_error: Option<String> = None;
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let call_started = Instant::now();
                let result = if prepared.oneway {
                    channel
                        .oneway_raw(&prepared.method(), &prepared.payload, &options)
                        .await
                        .map(|()| RawReply::Ok(Default::default()))
                } else {
                    channel
                        .call_raw(&prepared.method(), &prepared.payload, &options)
                        .await
                };
                latencies.record(call_started.elapsed());
                let outcome = Outcome::of(&result);
                outcomes[outcome as usize] += 1;
                if outcome != Outcome::Ok && first_error.is_none() {
                    first_error = Some(match result {
                        Ok(_) => "a declared error".to_owned(),
                        Err(e) => e.to_string(),
                    });
                }
                progress.inc(1);
            }
            (outcomes, first_error)
        });
    }
    let mut outcomes = [0u64; Outcome::ALL.len()];
    let mut first_error = None;
    while let Some(joined) = workers.join_next().await {
        let (o, e) =
            joined.map_err(|e| CliError::transport(format!("a caller task failed: {e}")))?;
        for (total, n) in outcomes.iter_mut().zip(o) {
            *total += n;
        }
        first_error = first_error.or(e);
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    let calls = latencies.count();
    let rate = calls as f64 / elapsed.as_secs_f64().max(1e-9);
    outln!(
        "{calls} calls in {:.2} s, concurrency {concurrency}: {rate:.0} calls/s",
        elapsed.as_secs_f64()
    );
    outln!(
        "  ok {}, declared error {}, unavailable {}, other status {}, transport/timeout {}",
        outcomes[Outcome::Ok as usize],
        outcomes[Outcome::Declared as usize],
        outcomes[Outcome::Unavailable as usize],
        outcomes[Outcome::Status as usize],
        outcomes[Outcome::Transport as usize]
    );
    outln!(
        "  latency p50 {}, p99 {}, max {}",
        millis(latencies.percentile(50.0)),
        millis(latencies.percentile(99.0)),
        millis(latencies.max())
    );
    if let Some(error) = first_error {
        outln!("  first failure: {error}");
    }
    Ok(Outcome::worst(&outcomes))
}

fn millis(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_headers_are_checked() {
        assert_eq!(
            split_method("hello.Greeter/say_hello").ok(),
            Some(("hello.Greeter", "say_hello"))
        );
        assert_eq!(
            split_method("shop.Orders:2/get").ok(),
            Some(("shop.Orders:2", "get"))
        );
        assert!(split_method("say_hello").is_err());
        assert!(split_method("hello.Greeter/").is_err());
        let metadata = parse_headers(&["a=1".into(), "b=x=y".into()]).expect("valid");
        assert_eq!(metadata.get("b"), Some("x=y"));
        assert!(parse_headers(&["novalue".into()]).is_err());
    }

    #[test]
    fn outcomes_are_counted_by_their_exit_code() {
        let status = |byte| Err(courier::Status::new(StatusCode::from_u8(byte), "").into());
        assert_eq!(
            Outcome::of(&Ok(RawReply::Ok(Default::default()))),
            Outcome::Ok
        );
        assert_eq!(
            Outcome::of(&Ok(RawReply::Declared(Default::default()))),
            Outcome::Declared
        );
        for byte in 2..=21 {
            let outcome = Outcome::of(&status(byte));
            assert_eq!(
                outcome.exit(),
                Exit::of_status(StatusCode::from_u8(byte)),
                "status {byte}"
            );
            assert_eq!(Outcome::ALL[outcome as usize], outcome);
        }
        let lost = courier::TransportError::ConnectionLost("reset".to_owned());
        assert_eq!(Outcome::of(&Err(lost.into())), Outcome::Transport);
    }

    #[test]
    fn many_calls_exit_with_the_worst_outcome_4_then_3_then_6_then_1() {
        // ok, declared, unavailable, other status, transport
        let cases = [
            ([3, 0, 0, 0, 0], Exit::Ok),
            ([3, 1, 0, 0, 0], Exit::Declared),
            ([3, 1, 1, 0, 0], Exit::Unavailable),
            ([0, 0, 5, 1, 0], Exit::Status),
            ([0, 1, 1, 1, 1], Exit::Transport),
            ([0, 0, 1, 0, 1], Exit::Transport),
        ];
        for (counts, exit) in cases {
            assert_eq!(Outcome::worst(&counts), exit, "{counts:?}");
        }
    }
}
