//! `demo`: the Courier walking skeleton in one binary.
//!
//! - `demo`: providers, the in-process registry and a consumer in one
//!   process; makes calls, prints what came back, exits 0.
//! - `demo serve --listen ADDR [--registry URL] [--tls-cert FILE --tls-key
//!   FILE [--tls-ca FILE]]`: serves `hello.Greeter` and `shop.OrderBook`
//!   (with `courier.Reflection` and `courier.Health`), over TLS with
//!   `--tls-cert/--tls-key` (and mutual TLS with `--tls-ca`: clients must
//!   present a certificate signed by it); prints `listening on IP:PORT`
//!   first; exits 0 after a graceful shutdown on SIGINT or SIGTERM.
//! - `demo call (--connect ADDR | --registry URL [--strategy NAME])
//!   [--serializer NAME] [--tls-ca FILE [--tls-cert FILE --tls-key FILE]
//!   [--tls-server-name NAME]] NAME`: calls `say_hello` (through a balanced
//!   channel over every registered instance with `--registry`; over TLS
//!   trusting `--tls-ca`), prints the greeting; on failure prints the error
//!   and exits 1.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use courier::balance::{Strategy, hash_key_of};
use courier::client::{
    BalanceOptions, CallOptions, Channel, ChannelConfig, ResponseMetadataCapture, Stub,
};
use courier::registry::{MemoryRegistry, Registry, RegistryUrl, ServiceInstance};
use courier::server::{Server, ServerHandle};
use courier::tls::{ClientTlsConfig, ServerTlsConfig};
use courier::{RpcError, Serializer};
use idl_examples::greeter::HelloGreeter;
use idl_examples::hello::greeter::{CountError, GreeterClient, GreeterServer, SayHelloError};
use idl_examples::order_book::MemoryOrderBook;
use idl_examples::shop::order_book::{GetError, OrderBookClient, OrderBookServer};
use idl_examples::shop::{LineItem, OrderStatus};

#[derive(Debug, Parser)]
#[command(
    name = "demo",
    version,
    about = "The Courier demo: hello.Greeter and shop.OrderBook."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve hello.Greeter and shop.OrderBook until SIGINT or SIGTERM.
    Serve {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, value_name = "ADDR")]
        listen: String,
        /// Registry to publish the services in (`memory` or `zk://...`).
        #[arg(long, value_name = "URL", default_value = "memory")]
        registry: RegistryUrl,
        #[command(flatten)]
        tls: ServeTls,
    },
    /// Call hello.Greeter/say_hello once and print the greeting.
    Call {
        /// Address of a server.
        #[arg(
            long,
            value_name = "ADDR",
            required_unless_present = "registry",
            conflicts_with = "registry"
        )]
        connect: Option<String>,
        /// Registry to find the servers in; calls are balanced over all.
        #[arg(long, value_name = "URL")]
        registry: Option<RegistryUrl>,
        /// Balancing strategy with `--registry`: random, weighted_random,
        /// round_robin, least_in_flight or consistent_hash.
        #[arg(long, value_name = "NAME", default_value = "weighted_random")]
        strategy: Strategy,
        /// Serializer for the call: protobuf, json, postcard or msgpack.
        #[arg(long, value_name = "NAME", default_value = "protobuf")]
        serializer: Serializer,
        #[command(flatten)]
        tls: CallTls,
        /// The name to greet.
        name: String,
    },
}

/// TLS for `demo serve`.
#[derive(Debug, clap::Args)]
struct ServeTls {
    /// Serve TLS with this PEM certificate chain (leaf first).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Mutual TLS: require client certificates signed by a CA in this PEM file.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_ca: Option<PathBuf>,
}

impl ServeTls {
    fn config(&self) -> Result<Option<ServerTlsConfig>, String> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let mut config = ServerTlsConfig::from_pem_files(cert, key).map_err(|e| e.to_string())?;
        if let Some(ca) = &self.tls_ca {
            config = config
                .with_client_ca_pem_file(ca)
                .map_err(|e| e.to_string())?;
        }
        Ok(Some(config))
    }
}

/// TLS for `demo call`.
#[derive(Debug, clap::Args)]
struct CallTls {
    /// Speak TLS, trusting the CA certificates in this PEM file.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Mutual TLS: present this PEM client certificate chain.
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Check the server's certificate against this name instead of the
    /// host dialed.
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    tls_server_name: Option<String>,
}

impl CallTls {
    fn channel_config(&self) -> Result<ChannelConfig, String> {
        let Some(ca) = &self.tls_ca else {
            return Ok(ChannelConfig::default());
        };
        let mut tls = ClientTlsConfig::from_ca_pem_file(ca).map_err(|e| e.to_string())?;
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            tls = tls
                .with_identity_pem_files(cert, key)
                .map_err(|e| e.to_string())?;
        }
        if let Some(name) = &self.tls_server_name {
            tls = tls.with_server_name(name).map_err(|e| e.to_string())?;
        }
        Ok(ChannelConfig {
            tls: Some(tls),
            ..ChannelConfig::default()
        })
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            None => run_in_process().await,
            Some(Command::Serve {
                listen,
                registry,
                tls,
            }) => serve(&listen, registry, &tls).await,
            Some(Command::Call {
                connect,
                registry,
                strategy,
                serializer,
                tls,
                name,
            }) => call(connect, registry, strategy, serializer, &tls, name).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Starts one provider: a server with both services (over TLS with
/// `tls`), published in `registry`.
async fn start_provider(
    listen: &str,
    registry: &dyn Registry,
    tls: Option<ServerTlsConfig>,
) -> Result<(ServerHandle, Vec<ServiceInstance>), String> {
    let builder = match tls {
        Some(tls) => Server::builder().tls(tls),
        None => Server::builder(),
    };
    let server = builder
        .add_service(GreeterServer::new(HelloGreeter::default()))
        .add_service(OrderBookServer::new(MemoryOrderBook::default()))
        // `courier list/describe/call` need no local .rpc files, and
        // balancers can probe it.
        .enable_reflection()
        .enable_health()
        .bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = server.local_addr();
    let mut instances = Vec::new();
    for service in [GreeterClient::WIRE_NAME, OrderBookClient::WIRE_NAME] {
        let instance = ServiceInstance::new(service, addr).with_tls(server.speaks_tls());
        registry
            .register(instance.clone())
            .await
            .map_err(|e| format!("cannot register {service}: {e}"))?;
        instances.push(instance);
    }
    Ok((server, instances))
}

/// `demo`: two providers, the in-process registry, and a consumer.
async fn run_in_process() -> Result<(), String> {
    let registry = MemoryRegistry::new();
    let mut providers = Vec::new();
    for _ in 0..2 {
        providers.push(start_provider("127.0.0.1:0", &registry, None).await?);
    }
    for (server, _) in &providers {
        println!("provider listening on {}", server.local_addr());
    }

    let shared: Arc<dyn Registry> = Arc::new(registry.clone());
    let channel = Channel::balanced(
        Arc::clone(&shared),
        GreeterClient::WIRE_NAME,
        BalanceOptions::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let greeter = GreeterClient::new(channel);

    let greeting = greeter
        .say_hello("Courier")
        .await
        .map_err(|e| e.to_string())?;
    println!("say_hello(\"Courier\") -> {greeting:?}");

    match greeter.say_hello("").await {
        Err(RpcError::Declared(SayHelloError::EmptyName(error))) => {
            println!(
                "say_hello(\"\") -> declared error EmptyName {{ hint: {:?} }}",
                error.hint
            );
        }
        other => {
            return Err(format!(
                "say_hello(\"\") should raise EmptyName, got {other:?}"
            ));
        }
    }

    let json_greeter = greeter.clone().with_options(CallOptions {
        serializer: Serializer::Json,
        ..CallOptions::default()
    });
    let greeting = json_greeter
        .say_hello("JSON")
        .await
        .map_err(|e| e.to_string())?;
    println!("say_hello(\"JSON\") over JSON -> {greeting:?}");

    // Response metadata: the greeter counts its greetings.
    let capture = ResponseMetadataCapture::new();
    greeter
        .clone()
        .capture_response_metadata(&capture)
        .say_hello("metadata")
        .await
        .map_err(|e| e.to_string())?;
    let greetings = capture
        .take()
        .and_then(|metadata| metadata.get("greetings").map(str::to_owned))
        .unwrap_or_default();
    println!("say_hello(\"metadata\") -> response metadata greetings = {greetings}");

    // A server stream: the items, in order, then its end.
    let mut counted = Vec::new();
    let mut count = greeter.count(3, 10);
    while let Some(item) = count.next().await {
        counted.push(item.map_err(|e| e.to_string())?);
    }
    println!("count(3, 10) -> items {counted:?}");
    let mut items = 0;
    let mut too_many = greeter.count(101, 0);
    let end = loop {
        match too_many.next().await {
            Some(Ok(_)) => items += 1,
            Some(Err(error)) => break Some(error),
            None => break None,
        }
    };
    match end {
        Some(RpcError::Declared(CountError::TooMany(error))) => {
            println!(
                "count(101, 0) -> {items} items, then declared error TooMany {{ max: {} }}",
                error.max
            );
        }
        other => {
            return Err(format!(
                "count(101, 0) should end with TooMany, got {other:?}"
            ));
        }
    }

    let hurried = greeter.clone().with_options(CallOptions {
        timeout: Some(Duration::from_millis(50)),
        ..CallOptions::default()
    });
    match hurried.sleep(2_000).await {
        Err(error) => println!("sleep(2000) with a 50 ms timeout -> {error}"),
        Ok(ms) => return Err(format!("sleep(2000) with a 50 ms timeout answered {ms}")),
    }

    greeter
        .notify("demo finished greeting")
        .await
        .map_err(|e| e.to_string())?;
    println!("notify(..) -> sent (one-way)");

    // Each provider keeps its own order book: one hash key keeps this
    // customer's calls on one instance.
    let orders = OrderBookClient::new(
        Channel::balanced(
            shared,
            OrderBookClient::WIRE_NAME,
            BalanceOptions::with_strategy(Strategy::ConsistentHash),
        )
        .await
        .map_err(|e| e.to_string())?,
    )
    .with_options(CallOptions {
        hash_key: Some(hash_key_of("demo customer")),
        ..CallOptions::default()
    });
    let id = orders
        .place(
            vec![LineItem {
                sku: "BOOK-42".into(),
                quantity: 2,
                unit_price_cents: 1_999,
            }],
            Some("gift wrap".into()),
            HashMap::from([("channel".to_owned(), "demo".to_owned())]),
        )
        .await
        .map_err(|e| e.to_string())?;
    orders
        .set_status(id, OrderStatus::Paid)
        .await
        .map_err(|e| e.to_string())?;
    let order = orders.get(id).await.map_err(|e| e.to_string())?;
    println!("place + set_status(PAID) + get({id}) -> {order:?}");
    let paid = orders
        .by_status(OrderStatus::Paid)
        .await
        .map_err(|e| e.to_string())?;
    println!("by_status(PAID) -> {} order(s)", paid.len());
    match orders.get(9_999).await {
        Err(RpcError::Declared(GetError::OrderNotFound(missing))) => {
            println!(
                "get(9999) -> declared error OrderNotFound {{ id: {} }}",
                missing.id
            )
        }
        other => {
            return Err(format!(
                "get(9999) should raise OrderNotFound, got {other:?}"
            ));
        }
    }

    for (server, instances) in providers {
        for instance in &instances {
            registry
                .deregister(&instance.service, &instance.id)
                .await
                .map_err(|e| e.to_string())?;
        }
        server.shutdown().await;
    }
    println!("done");
    Ok(())
}

/// `demo serve`.
async fn serve(listen: &str, registry_url: RegistryUrl, tls: &ServeTls) -> Result<(), String> {
    let tls = tls.config()?;
    let registry: Arc<dyn Registry> = courier::registry::connect_registry(&registry_url)
        .await
        .map_err(|e| e.to_string())?;
    let (server, instances) = start_provider(listen, registry.as_ref(), tls).await?;
    {
        let mut stdout = std::io::stdout().lock();
        // The first line is a contract: scripts and tests read the port from it.
        writeln!(stdout, "listening on {}", server.local_addr()).map_err(|e| e.to_string())?;
        stdout.flush().map_err(|e| e.to_string())?;
    }
    wait_for_shutdown_signal().await?;
    eprintln!("shutting down");
    for instance in &instances {
        if let Err(error) = registry.deregister(&instance.service, &instance.id).await {
            eprintln!("warning: cannot deregister {}: {error}", instance.service);
        }
    }
    server.shutdown().await;
    if let Err(error) = registry.close().await {
        eprintln!("warning: cannot close the registry: {error}");
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_shutdown_signal() -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}

/// `demo call`.
async fn call(
    connect: Option<String>,
    registry: Option<RegistryUrl>,
    strategy: Strategy,
    serializer: Serializer,
    tls: &CallTls,
    name: String,
) -> Result<(), String> {
    let config = tls.channel_config()?;
    let channel = match (connect, registry) {
        (Some(addr), _) => Channel::connect_with(addr.as_str(), config)
            .await
            .map_err(|e| e.to_string())?,
        (None, Some(url)) => {
            let registry = courier::registry::connect_registry(&url)
                .await
                .map_err(|e| e.to_string())?;
            Channel::balanced(
                registry,
                GreeterClient::WIRE_NAME,
                BalanceOptions {
                    channel: config,
                    ..BalanceOptions::with_strategy(strategy)
                },
            )
            .await
            .map_err(|e| e.to_string())?
        }
        (None, None) => return Err("pass --connect ADDR or --registry URL".into()),
    };
    let greeter = GreeterClient::new(channel).with_options(CallOptions {
        serializer,
        ..CallOptions::default()
    });
    match greeter.say_hello(name).await {
        Ok(greeting) => {
            println!("{greeting}");
            Ok(())
        }
        Err(RpcError::Declared(SayHelloError::EmptyName(error))) => {
            Err(format!("declared error hello.EmptyName: {}", error.hint))
        }
        Err(other) => Err(other.to_string()),
    }
}
