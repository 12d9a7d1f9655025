//! [`ServerTlsConfig`] and [`ClientTlsConfig`]: certificates, keys and CA
//! roots from PEM, turned into rustls configurations (ring provider, TLS
//! 1.2 and 1.3).

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::{DEFAULT_HANDSHAKE_TIMEOUT, TlsError};

/// A server's TLS setup: its certificate chain and key, and, for mutual
/// TLS, the CA that client certificates must be signed by.
///
/// ```no_run
/// # fn main() -> Result<(), courier::tls::TlsError> {
/// use courier::tls::ServerTlsConfig;
/// let tls = ServerTlsConfig::from_pem_files("server.pem", "server.key")?
///     // mutual TLS: require a client certificate signed by this CA
///     .with_client_ca_pem_file("clients-ca.pem")?;
/// # let _ = tls; Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServerTlsConfig {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    client_roots: Option<Arc<RootCertStore>>,
    pub(crate) rustls: Arc<rustls::ServerConfig>,
    handshake_timeout: Duration,
}

impl fmt::Debug for ServerTlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTlsConfig")
            .field("certificates", &self.chain.len())
            .field("requires_client_certificate", &self.client_roots.is_some())
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl ServerTlsConfig {
    /// Reads the certificate chain (leaf first) and its private key
    /// (PKCS#8, PKCS#1 or SEC1) from PEM files.
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<ServerTlsConfig, TlsError> {
        let (chain_path, key_path) = (cert_chain.as_ref(), key.as_ref());
        let chain = certificates(
            "certificate chain",
            &file_name(chain_path),
            &read_file("certificate chain", chain_path)?,
        )?;
        let key = private_key(&file_name(key_path), &read_file("private key", key_path)?)?;
        ServerTlsConfig::build(chain, key)
    }

    /// Like [`from_pem_files`](Self::from_pem_files), from PEM text.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<ServerTlsConfig, TlsError> {
        let chain = certificates("certificate chain", "PEM text", cert_chain)?;
        let key = private_key("PEM text", key)?;
        ServerTlsConfig::build(chain, key)
    }

    fn build(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<ServerTlsConfig, TlsError> {
        Ok(ServerTlsConfig {
            rustls: Arc::new(server_config(&chain, &key, None)?),
            chain,
            key: Arc::new(key),
            client_roots: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }

    fn rebuild(&mut self) -> Result<(), TlsError> {
        self.rustls = Arc::new(server_config(
            &self.chain,
            &self.key,
            self.client_roots.clone(),
        )?);
        Ok(())
    }

    /// Mutual TLS: every client must present a certificate signed by one of
    /// the CA certificates in this PEM file, or the handshake fails. The
    /// handler sees the client's identity in
    /// [`CallContext::peer_identity`](crate::CallContext::peer_identity).
    pub fn with_client_ca_pem_file(
        self,
        ca: impl AsRef<Path>,
    ) -> Result<ServerTlsConfig, TlsError> {
        let path = ca.as_ref();
        let pem = read_file("CA certificates", path)?;
        self.with_client_ca(&file_name(path), &pem)
    }

    /// Like [`with_client_ca_pem_file`](Self::with_client_ca_pem_file),
    /// from PEM text.
    pub fn with_client_ca_pem(self, ca: &[u8]) -> Result<ServerTlsConfig, TlsError> {
        self.with_client_ca("PEM text", ca)
    }

    fn with_client_ca(
        mut self,
        source_name: &str,
        pem: &[u8],
    ) -> Result<ServerTlsConfig, TlsError> {
        self.client_roots = Some(Arc::new(root_store(source_name, pem)?));
        self.rebuild()?;
        Ok(self)
    }

    /// How long a client may take to finish the handshake (default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`]); a slower one is disconnected.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> ServerTlsConfig {
        self.handshake_timeout = timeout;
        self
    }

    /// The handshake timeout.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// Whether clients must present a certificate (mutual TLS).
    pub fn requires_client_certificate(&self) -> bool {
        self.client_roots.is_some()
    }
}

/// A channel's TLS setup: the CA roots it trusts, optionally the client
/// certificate it presents (mutual TLS), and the name it checks the
/// server's certificate against.
///
/// Without [`with_server_name`](Self::with_server_name) the name checked
/// is the host the channel dials (`localhost` for `localhost:7070`,
/// `127.0.0.1` for `127.0.0.1:7070`; for a balanced channel, each
/// instance's registered address).
///
/// ```no_run
/// # fn main() -> Result<(), courier::tls::TlsError> {
/// use courier::tls::ClientTlsConfig;
/// let tls = ClientTlsConfig::from_ca_pem_file("ca.pem")?
///     .with_identity_pem_files("client.pem", "client.key")?
///     .with_server_name("greeter.internal")?;
/// # let _ = tls; Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClientTlsConfig {
    roots: Arc<RootCertStore>,
    identity: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
    server_name: Option<ServerName<'static>>,
    pub(crate) rustls: Arc<rustls::ClientConfig>,
    handshake_timeout: Duration,
}

impl fmt::Debug for ClientTlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTlsConfig")
            .field("roots", &self.roots.len())
            .field("client_certificate", &self.identity.is_some())
            .field(
                "server_name",
                &self.server_name.as_ref().map(|name| name.to_str()),
            )
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl ClientTlsConfig {
    /// Trusts the CA certificates of a PEM file (and nothing else: there
    /// are no built-in roots).
    pub fn from_ca_pem_file(ca: impl AsRef<Path>) -> Result<ClientTlsConfig, TlsError> {
        let path = ca.as_ref();
        let pem = read_file("CA certificates", path)?;
        ClientTlsConfig::build(root_store(&file_name(path), &pem)?)
    }

    /// Like [`from_ca_pem_file`](Self::from_ca_pem_file), from PEM text.
    pub fn from_ca_pem(ca: &[u8]) -> Result<ClientTlsConfig, TlsError> {
        ClientTlsConfig::build(root_store("PEM text", ca)?)
    }

    fn build(roots: RootCertStore) -> Result<ClientTlsConfig, TlsError> {
        let roots = Arc::new(roots);
        Ok(ClientTlsConfig {
            rustls: Arc::new(client_config(&roots, None)?),
            roots,
            identity: None,
            server_name: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }

    /// Presents this certificate chain (leaf first) and key to servers that
    /// ask for one (mutual TLS).
    pub fn with_identity_pem_files(
        self,
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<ClientTlsConfig, TlsError> {
        let (chain_path, key_path) = (cert_chain.as_ref(), key.as_ref());
        let chain = certificates(
            "certificate chain",
            &file_name(chain_path),
            &read_file("certificate chain", chain_path)?,
        )?;
        let key = private_key(&file_name(key_path), &read_file("private key", key_path)?)?;
        self.with_identity(chain, key)
    }

    /// Like [`with_identity_pem_files`](Self::with_identity_pem_files),
    /// from PEM text.
    pub fn with_identity_pem(
        self,
        cert_chain: &[u8],
        key: &[u8],
    ) -> Result<ClientTlsConfig, TlsError> {
        let chain = certificates("certificate chain", "PEM text", cert_chain)?;
        let key = private_key("PEM text", key)?;
        self.with_identity(chain, key)
    }

    fn with_identity(
        mut self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<ClientTlsConfig, TlsError> {
        let identity = (chain, Arc::new(key));
        self.rustls = Arc::new(client_config(&self.roots, Some(&identity))?);
        self.identity = Some(identity);
        Ok(self)
    }

    /// Checks the server's certificate against `name` (a DNS name or an IP
    /// address), and sends it as SNI, instead of the host dialed.
    pub fn with_server_name(mut self, name: &str) -> Result<ClientTlsConfig, TlsError> {
        self.server_name = Some(server_name(name)?);
        Ok(self)
    }

    /// How long the handshake may take (default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> ClientTlsConfig {
        self.handshake_timeout = timeout;
        self
    }

    /// The handshake timeout.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The server name set with [`with_server_name`](Self::with_server_name).
    pub(crate) fn server_name_override(&self) -> Option<&ServerName<'static>> {
        self.server_name.as_ref()
    }
}

/// A server name from a host (`localhost`, `10.0.0.1`, `[::1]`).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(bare.to_owned()).map_err(|_| TlsError::InvalidServerName(host.to_owned()))
}

/// The *ring* provider (the book's TLS chapter says so to users).
fn provider() -> Arc<CryptoProvider> {
    // rustls 0.23.48 deprecates the *ring* provider because it has no
    // post-quantum key exchange (it moves to its own crate in rustls 0.24).
    // Allowed, not expected: older 0.23 releases, such as the workspace's
    // locked one, do not deprecate it, and users' builds resolve either.
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config(
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    client_roots: Option<Arc<RootCertStore>>,
) -> Result<rustls::ServerConfig, TlsError> {
    let provider = provider();
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(config_error)?;
    let builder = match client_roots {
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| TlsError::Config(format!("cannot verify client certificates: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(chain.to_vec(), key.clone_key())
        .map_err(config_error)
}

fn client_config(
    roots: &Arc<RootCertStore>,
    identity: Option<&(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_root_certificates(Arc::clone(roots));
    match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .map_err(config_error),
        None => Ok(builder.with_no_client_auth()),
    }
}

fn config_error(e: rustls::Error) -> TlsError {
    match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => TlsError::Config(
            "the private key does not belong to the certificate (check the --tls-cert/--tls-key pair)"
                .to_owned(),
        ),
        other => TlsError::Config(other.to_string()),
    }
}

fn file_name(path: &Path) -> String {
    format!("`{}`", path.display())
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::ReadFile {
        what,
        path: path.to_owned(),
        source: Arc::new(e),
    })
}

fn certificates(
    what: &'static str,
    source_name: &str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            source_name: source_name.to_owned(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            what,
            source_name: source_name.to_owned(),
            reason: "it holds no `-----BEGIN CERTIFICATE-----` block".to_owned(),
        });
    }
    Ok(chain)
}

fn private_key(source_name: &str, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::Pem {
        what: "private key",
        source_name: source_name.to_owned(),
        reason: match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                "it holds no `-----BEGIN PRIVATE KEY-----` (or RSA/EC PRIVATE KEY) block".to_owned()
            }
            other => other.to_string(),
        },
    })
}

fn root_store(source_name: &str, pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates("CA certificates", source_name, pem)? {
        roots.add(certificate).map_err(|e| TlsError::Pem {
            what: "CA certificates",
            source_name: source_name.to_owned(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}
