//! `courier list REGISTRY_URL [SERVICE]`: the services of a ZooKeeper
//! registry and their instances, read from the nodes as DISCOVERY.md lays
//! them out (`BASE/SERVICE/INSTANCE_ID`, Curator's JSON), so instances a
//! Java Curator client registered show too.
//!
//! The nodes are read directly (not through the runtime's `Registry`,
//! which lists one service's usable instances): a listing shows every
//! service under the base path, the registration time, and nodes the
//! runtime would skip, with the reason.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use courier::registry::{DEFAULT_WEIGHT, RegistryUrl, ZooKeeperUrl};
use courier_cli::duration;
use serde_json::{Value, json};
use zookeeper_client as zk;

use crate::exit::{CliError, Exit};
use crate::output::{self, Format, outln};

/// `courier list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The registry: `zk://HOST:PORT[,HOST:PORT...][/BASE/PATH]`.
    pub registry: String,
    /// Only this service (its wire name).
    pub service: Option<String>,
    /// Print JSON (one object per service) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// How long connecting to ZooKeeper may take.
    #[arg(long, short = 't', value_name = "DURATION", default_value = "5s", value_parser = duration::parse)]
    pub timeout: Duration,
}

/// One instance node, as read.
#[derive(Debug, Clone, PartialEq)]
struct Listed {
    id: String,
    address: String,
    port: Option<u16>,
    tls: bool,
    weight: String,
    serializers: String,
    protocol: String,
    registered_ms: Option<u64>,
    /// Why the runtime would not use it, if it would not.
    unusable: Option<String>,
}

pub async fn run(args: ListArgs) -> Result<Exit, CliError> {
    let url: RegistryUrl = args.registry.parse().map_err(|e| {
        CliError::usage(format!("bad registry URL `{}`: {e}", args.registry))
            .with_hint("write it as zk://HOST:PORT[,HOST:PORT...][/BASE/PATH]")
    })?;
    let RegistryUrl::ZooKeeper(zk_url) = url else {
        return Err(CliError::usage(
            "the `memory` registry lives inside one process; courier cannot list it",
        )
        .with_hint("pass a zk:// registry URL"));
    };
    let client = connect(&zk_url, args.timeout).await?;
    let base = zk_url.base_path.trim_end_matches('/').to_owned();
    let services = match &args.service {
        Some(service) => vec![service.clone()],
        None => match client
            .list_children(if base.is_empty() { "/" } else { &base })
            .await
        {
            Ok(mut children) => {
                // At the root, ZooKeeper's own node is not a service.
                if base.is_empty() {
                    children.retain(|child| child != "zookeeper");
                }
                children.sort();
                children
            }
            Err(zk::Error::NoNode) => Vec::new(),
            Err(error) => return Err(zk_error("list", &base, error)),
        },
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut listing = BTreeMap::new();
    for service in &services {
        let path = format!("{base}/{service}");
        let mut children = match client.list_children(&path).await {
            Ok(children) => children,
            Err(zk::Error::NoNode) => Vec::new(),
            Err(error) => return Err(zk_error("list", &path, error)),
        };
        children.sort();
        let mut instances = Vec::new();
        for child in children {
            let node = format!("{path}/{child}");
            match client.get_data(&node).await {
                Ok((data, _)) => instances.push(parse_node(&child, &data)),
                // Gone between the listing and the read.
                Err(zk::Error::NoNode) => {}
                Err(error) => return Err(zk_error("read", &node, error)),
            }
        }
        listing.insert(service.clone(), instances);
    }
    if args.json {
        let services: Vec<Value> = listing
            .iter()
            .map(|(service, instances)| {
                json!({
                    "service": service,
                    "instances": instances.iter().map(|i| json!({
                        "id": i.id,
                        "address": i.address,
                        "port": i.port,
                        "tls": i.tls,
                        "weight": i.weight,
                        "serializers": i.serializers,
                        "protocol": i.protocol,
                        "registrationTimeUTC": i.registered_ms,
                        "unusable": i.unusable,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        output::print_json(&Value::Array(services), Format::Auto);
        return Ok(Exit::Ok);
    }
    if listing.is_empty() {
        outln!("no services under {base} at {}", zk_url.connect_string());
        return Ok(Exit::Ok);
    }
    for (service, instances) in &listing {
        let count = instances.len();
        outln!(
            "{service} ({count} instance{})",
            if count == 1 { "" } else { "s" }
        );
        if instances.is_empty() {
            continue;
        }
        let rows: Vec<[String; 7]> = instances
            .iter()
            .map(|i| {
                [
                    i.id.clone(),
                    match i.port {
                        Some(port) => host_port(&i.address, port),
                        None => i.address.clone(),
                    },
                    i.weight.clone(),
                    if i.tls { "yes" } else { "no" }.to_owned(),
                    i.serializers.clone(),
                    i.registered_ms
                        .map_or_else(|| "?".to_owned(), |ms| age(now_ms.saturating_sub(ms))),
                    match &i.unusable {
                        Some(reason) => format!("{} (unusable: {reason})", i.protocol),
                        None => i.protocol.clone(),
                    },
                ]
            })
            .collect();
        print_table(
            &[
                "ID",
                "ADDRESS",
                "WEIGHT",
                "TLS",
                "SERIALIZERS",
                "AGE",
                "PROTOCOL",
            ],
            &rows,
        );
    }
    Ok(Exit::Ok)
}

async fn connect(url: &ZooKeeperUrl, timeout: Duration) -> Result<zk::Client, CliError> {
    let mut connector = zk::Client::connector()
        .with_session_timeout(url.session_timeout.unwrap_or(Duration::from_secs(10)))
        .with_connection_timeout(timeout)
        .with_fail_eagerly();
    if let Some(digest) = &url.digest {
        let auth = format!("{}:{}", digest.user(), digest.password());
        connector = connector.with_auth("digest", auth.as_bytes());
    }
    let connect_string = url.connect_string();
    let connecting = connector.connect(&connect_string);
    match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(error)) => Err(CliError::transport(format!(
            "cannot connect to ZooKeeper at {}: {error}",
            url.connect_string()
        ))
        .with_hint("is ZooKeeper running there? the URL is zk://HOST:PORT[/BASE]")),
        Err(_) => Err(CliError::transport(format!(
            "cannot connect to ZooKeeper at {} within {timeout:?}",
            url.connect_string()
        ))
        .with_hint("is ZooKeeper running there? raise --timeout if it is slow")),
    }
}

fn zk_error(operation: &str, path: &str, error: zk::Error) -> CliError {
    let hint = match error {
        zk::Error::NoAuth => {
            Some("the node's ACL needs credentials: add ?digest=USER:PASSWORD to the URL")
        }
        _ => None,
    };
    let error = CliError::transport(format!("ZooKeeper {operation} of {path} failed: {error}"));
    match hint {
        Some(hint) => error.with_hint(hint),
        None => error,
    }
}

/// Reads one node's data leniently, as the runtime's registry does
/// (DISCOVERY.md): Curator's JSON, Courier's keys in `payload` with their
/// defaults when missing.
fn parse_node(id: &str, data: &[u8]) -> Listed {
    let mut listed = Listed {
        id: id.to_owned(),
        address: String::new(),
        port: None,
        tls: false,
        weight: DEFAULT_WEIGHT.to_string(),
        serializers: "protobuf,json,postcard,msgpack".to_owned(),
        protocol: "courier/1".to_owned(),
        registered_ms: None,
        unusable: None,
    };
    let object = match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(object)) => object,
        _ => {
            listed.unusable = Some("the node's data is not a JSON object".into());
            listed.protocol = "?".into();
            return listed;
        }
    };
    let port_of = |key: &str| {
        object
            .get(key)
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
    };
    listed.address = object
        .get("address")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match (port_of("sslPort"), port_of("port")) {
        (Some(ssl), _) => {
            listed.port = Some(ssl);
            listed.tls = true;
        }
        (None, port) => listed.port = port,
    }
    listed.registered_ms = object.get("registrationTimeUTC").and_then(Value::as_u64);
    if listed.address.is_empty() || listed.port.is_none() {
        listed.unusable = Some("no address or port".into());
    }
    if object.get("enabled") == Some(&Value::Bool(false)) {
        listed.unusable = Some("disabled".into());
    }
    match object.get("payload") {
        Some(Value::Object(payload)) => {
            let text = |key: &str| {
                payload.get(key).and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
            };
            if let Some(weight) = text("weight") {
                listed.weight = weight;
            }
            if let Some(serializers) = text("serializers") {
                listed.serializers = serializers;
            }
            match text("protocol") {
                Some(protocol) => listed.protocol = protocol,
                None => listed.protocol = "courier/1 (default: not in payload)".into(),
            }
        }
        _ => listed.protocol = "courier/1 (default: no payload)".into(),
    }
    listed
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `42s`, `3m12s`, `2h5m`, `3d4h`.
fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

fn print_table<const N: usize>(headers: &[&str; N], rows: &[[String; N]]) {
    let mut widths = headers.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::from(" ");
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            out.push(' ');
            out.push_str(cell);
            if i + 1 < N {
                out.push_str(&" ".repeat(width - cell.chars().count() + 1));
            }
        }
        outln!("{}", out.trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_courier_node() {
        let data = br#"{"name":"hello.Greeter","id":"x","address":"127.0.0.1","port":7070,"sslPort":null,"payload":{"@class":"java.util.LinkedHashMap","weight":"50","serializers":"protobuf,json","protocol":"courier/1"},"registrationTimeUTC":1764000000000,"serviceType":"DYNAMIC","uriSpec":null}"#;
        let listed = parse_node("x", data);
        assert_eq!(listed.port, Some(7070));
        assert!(!listed.tls);
        assert_eq!(listed.weight, "50");
        assert_eq!(listed.serializers, "protobuf,json");
        assert_eq!(listed.registered_ms, Some(1_764_000_000_000));
        assert_eq!(listed.unusable, None);
    }

    #[test]
    fn a_plain_curator_node_and_a_tls_one_and_garbage() {
        let curator = br#"{"name":"s","id":"y","address":"10.0.0.1","port":81,"sslPort":null,"payload":null,"registrationTimeUTC":5,"serviceType":"DYNAMIC","uriSpec":null}"#;
        let listed = parse_node("y", curator);
        assert_eq!(listed.weight, "100");
        assert_eq!(listed.protocol, "courier/1 (default: no payload)");
        let tls = parse_node("z", br#"{"address":"h","port":null,"sslPort":443}"#);
        assert_eq!((tls.port, tls.tls), (Some(443), true));
        let garbage = parse_node("g", b"\xff not json");
        assert!(garbage.unusable.is_some());
    }

    #[test]
    fn ages() {
        assert_eq!(age(5_000), "5s");
        assert_eq!(age(192_000), "3m12s");
        assert_eq!(age(7_500_000), "2h5m");
        assert_eq!(age(3 * 86_400_000 + 4 * 3_600_000), "3d4h");
    }
}
