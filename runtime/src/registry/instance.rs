//! [`ServiceInstance`]: one provider of a service, as registered.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use rand::Rng;

use crate::serializer::Serializer;

/// The weight of an instance that sets none.
pub const DEFAULT_WEIGHT: u32 = 100;
/// The protocol an instance speaks (DISCOVERY.md, payload `protocol`).
pub const PROTOCOL: &str = "courier/1";

/// One provider of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInstance {
    /// The service's wire name (`hello.Greeter`, `shop.Orders:2`).
    pub service: String,
    /// Unique per instance: a random UUID by default.
    pub id: String,
    /// The host or IP address to connect to.
    pub address: String,
    /// The port to connect to.
    pub port: u16,
    /// Whether `port` speaks TLS (a server built with
    /// [`ServerBuilder::tls`](crate::server::ServerBuilder::tls)). In
    /// ZooKeeper the port is then written as Curator's `sslPort`, with
    /// `port` null.
    pub tls: bool,
    /// The balancing weight (default 100).
    pub weight: u32,
    /// The serializers the instance accepts.
    pub serializers: Vec<Serializer>,
    /// The protocol it speaks (`courier/1`).
    pub protocol: String,
    /// The user's metadata.
    pub metadata: BTreeMap<String, String>,
}

impl ServiceInstance {
    /// An instance of `service` at `addr` (e.g. a server's
    /// [`local_addr`](crate::server::ServerHandle::local_addr)) with a random
    /// id and the defaults: weight 100, every serializer, `courier/1`, no
    /// metadata.
    pub fn new(service: impl Into<String>, addr: SocketAddr) -> ServiceInstance {
        ServiceInstance::from_host(service, addr.ip().to_string(), addr.port())
    }

    /// Like [`ServiceInstance::new`], at a host name or address and a port.
    pub fn from_host(
        service: impl Into<String>,
        address: impl Into<String>,
        port: u16,
    ) -> ServiceInstance {
        ServiceInstance {
            service: service.into(),
            id: random_instance_id(),
            address: address.into(),
            port,
            tls: false,
            weight: DEFAULT_WEIGHT,
            serializers: Serializer::ALL.to_vec(),
            protocol: PROTOCOL.to_owned(),
            metadata: BTreeMap::new(),
        }
    }
}

impl ServiceInstance {
    /// This instance with `tls` set: whether its port speaks TLS (pass
    /// [`ServerHandle::speaks_tls`](crate::server::ServerHandle::speaks_tls)).
    pub fn with_tls(mut self, tls: bool) -> ServiceInstance {
        self.tls = tls;
        self
    }
}

/// A random (version 4) UUID in its usual text form.
pub fn random_instance_id() -> String {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[6] = (bytes[6] & 0x0F) | 0x40;
    bytes[8] = (bytes[8] & 0x3F) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let instance =
            ServiceInstance::new("hello.Greeter", "127.0.0.1:7070".parse().expect("addr"));
        assert_eq!(
            (instance.address.as_str(), instance.port),
            ("127.0.0.1", 7070)
        );
        assert_eq!(instance.weight, 100);
        assert_eq!(instance.protocol, "courier/1");
        assert_eq!(instance.serializers, Serializer::ALL);
        assert!(instance.metadata.is_empty());
        assert!(!instance.tls);
        assert!(instance.with_tls(true).tls);
    }

    #[test]
    fn ids_are_uuid_v4_and_differ() {
        let a = random_instance_id();
        let b = random_instance_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        let dashes: Vec<usize> = a.match_indices('-').map(|(i, _)| i).collect();
        assert_eq!(dashes, [8, 13, 18, 23]);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }
}
