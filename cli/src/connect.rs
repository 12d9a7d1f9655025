//! Reaching a server: `HOST:PORT`, or a registry URL (every instance of
//! the service, balanced), with the connection flags shared by `call` and
//! `describe`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use courier::client::{BalanceOptions, Channel, ChannelConfig};
use courier::registry::{Registry, RegistryUrl, connect_registry};
use courier_cli::duration;

use crate::exit::CliError;

/// How to connect (flags shared by `call` and `describe`).
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// How long one connection attempt may take.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration::parse)]
    pub connect_timeout: Duration,
    /// PEM file of the CA certificates to trust: turns TLS on.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// PEM file of the client certificate chain, for mutual TLS (with
    /// --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key", requires = "tls_ca")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file of the client's private key, for mutual TLS (with
    /// --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The name the server's certificate must carry, when it is not the
    /// host of TARGET (e.g. when TARGET is an IP address).
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    pub tls_server_name: Option<String>,
}

/// Where calls go.
#[derive(Debug, Clone)]
pub enum Target {
    /// One server.
    Address(String),
    /// Every instance of the service in a registry.
    Registry(RegistryUrl),
}

impl Target {
    /// `HOST:PORT`, or a registry URL (`zk://...`).
    pub fn parse(text: &str) -> Result<Target, CliError> {
        if text.contains("://") || text == "memory" {
            let url: RegistryUrl = text.parse().map_err(|e| {
                CliError::usage(format!("bad registry URL `{text}`: {e}"))
                    .with_hint("write it as zk://HOST:PORT[,HOST:PORT...][/BASE/PATH]")
            })?;
            if matches!(url, RegistryUrl::Memory) {
                return Err(CliError::usage(
                    "the `memory` registry lives inside one process; courier cannot see it",
                )
                .with_hint("pass the server's HOST:PORT, or a zk:// registry URL"));
            }
            return Ok(Target::Registry(url));
        }
        let valid = text
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid {
            return Err(CliError::usage(format!("bad target `{text}`")).with_hint(
                "write HOST:PORT (127.0.0.1:7070) or a registry URL (zk://127.0.0.1:2181/courier)",
            ));
        }
        Ok(Target::Address(text.to_owned()))
    }
}

/// The channel configuration of the flags.
pub fn channel_config(
    args: &ConnectArgs,
    default_timeout: Duration,
) -> Result<ChannelConfig, CliError> {
    let mut config = ChannelConfig {
        connect_timeout: args.connect_timeout,
        default_timeout: Some(default_timeout),
        ..ChannelConfig::default()
    };
    if let Some(ca) = &args.tls_ca {
        let tls_error = |e: courier::tls::TlsError| {
            CliError::usage(format!("TLS: {e}"))
                .with_hint("--tls-ca, --tls-cert and --tls-key take PEM files")
        };
        let mut tls = courier::tls::ClientTlsConfig::from_ca_pem_file(ca).map_err(tls_error)?;
        if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
            tls = tls.with_identity_pem_files(cert, key).map_err(tls_error)?;
        }
        if let Some(name) = &args.tls_server_name {
            tls = tls.with_server_name(name).map_err(tls_error)?;
        }
        config.tls = Some(tls);
    }
    Ok(config)
}

/// A channel to `target` for calls to `service`, and the registry it
/// watches (kept open while the channel is used).
pub async fn channel(
    target: &Target,
    service: &str,
    config: ChannelConfig,
) -> Result<(Channel, Option<Arc<dyn Registry>>), CliError> {
    match target {
        Target::Address(addr) => {
            let channel = Channel::connect_with(addr.as_str(), config)
                .await
                .map_err(|e| {
                    CliError::transport(e.to_string())
                        .with_hint("is the server running, and is TARGET its HOST:PORT?")
                })?;
            Ok((channel, None))
        }
        Target::Registry(url) => {
            let registry = connect_registry(url).await.map_err(|e| {
                CliError::transport(format!("cannot open the registry: {e}"))
                    .with_hint("is ZooKeeper running at that address?")
            })?;
            let options = BalanceOptions {
                channel: config,
                ..BalanceOptions::default()
            };
            let channel = Channel::balanced(Arc::clone(&registry), service, options)
                .await
                .map_err(|e| CliError::transport(e.to_string()))?;
            if channel.instances().is_empty() {
                return Err(CliError::transport(format!(
                    "no instance of {service} is registered at {url}"
                ))
                .with_hint("`courier list URL` shows what is registered"));
            }
            Ok((channel, Some(registry)))
        }
    }
}
