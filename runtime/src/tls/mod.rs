//! TLS and mutual TLS (the `tls` cargo feature, on by default): rustls with
//! the ring provider.
//!
//! - A server serves TLS with [`ServerBuilder::tls`](crate::server::ServerBuilder::tls)
//!   and a [`ServerTlsConfig`] (certificate chain and key from PEM; with
//!   [`ServerTlsConfig::with_client_ca_pem_file`], mutual TLS: clients must
//!   present a certificate signed by that CA).
//! - A channel speaks TLS with [`ChannelConfig::tls`](crate::client::ChannelConfig::tls)
//!   and a [`ClientTlsConfig`] (CA roots, optionally a client certificate,
//!   optionally the server name to check).
//! - A handler sees the client's certificate identity in
//!   [`CallContext::peer_identity`](crate::CallContext::peer_identity).
//!
//! The handshake runs in each connection's own task, never in the accept
//! loop, and must finish within the handshake timeout (default
//! [`DEFAULT_HANDSHAKE_TIMEOUT`]). Failures are [`TlsError`]s that say what
//! to fix; the server logs its side (at `info`) and goes on serving.
//!
//! [`PeerIdentity`] and [`TlsError`] exist without the feature too, so
//! code that reads them builds either way.

#[cfg(feature = "tls")]
mod config;
mod error;
#[cfg(feature = "tls")]
pub(crate) mod handshake;
mod identity;

use std::time::Duration;

#[cfg(feature = "tls")]
pub(crate) use config::server_name;
#[cfg(feature = "tls")]
pub use config::{ClientTlsConfig, ServerTlsConfig};
pub use error::TlsError;
pub(crate) use error::is_tls_record_start;
pub use identity::PeerIdentity;

/// The default time a TLS handshake may take, on both sides.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
