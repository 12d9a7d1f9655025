//! TLS and mutual TLS over real sockets, with certificates made at run
//! time (rcgen): calls work, the handler sees the client's identity, and
//! every misconfiguration fails with a clear error on both sides (the
//! server's in its log) while the server goes on serving.

mod common;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use courier::client::{BalanceOptions, Channel, ChannelConfig, MethodDescriptor};
use courier::registry::{MemoryRegistry, Registry, ServiceInstance};
use courier::server::{IncomingCall, Server, ServerHandle, ServiceHandler};
use courier::tls::{ClientTlsConfig, ServerTlsConfig, TlsError};
use courier::{CallContext, RpcError, TransportError};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use tokio::io::AsyncWriteExt;
use tracing_subscriber::fmt::MakeWriter;

// ---- certificates -------------------------------------------------------

/// A CA made for one test.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

/// A certificate and its key, in PEM.
struct Leaf {
    cert: String,
    key: String,
    der: Vec<u8>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("key");
        let pem = params.self_signed(&key).expect("self-signed").pem();
        Ca { params, key, pem }
    }

    fn issue(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().expect("key");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("signed");
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    fn server(&self) -> Leaf {
        self.issue(server_params())
    }

    /// A client certificate: CN `billing`, a DNS name and a SPIFFE URI.
    fn client(&self) -> Leaf {
        self.issue(client_params())
    }
}

fn server_params() -> CertificateParams {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params
        .distinguished_name
        .push(DnType::CommonName, "courier test server");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params
}

fn client_params() -> CertificateParams {
    let mut params = CertificateParams::new(vec!["billing.internal".to_owned()]).expect("params");
    params.subject_alt_names.push(SanType::URI(
        "spiffe://acme.test/billing".try_into().expect("uri"),
    ));
    params
        .distinguished_name
        .push(DnType::CommonName, "billing");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Acme");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

/// Valid from 2000 to 2001: long expired.
fn expired(mut params: CertificateParams) -> CertificateParams {
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    params
}

fn server_tls(ca: &Ca) -> ServerTlsConfig {
    server_tls_with(&ca.server())
}

fn server_tls_with(leaf: &Leaf) -> ServerTlsConfig {
    ServerTlsConfig::from_pem(leaf.cert.as_bytes(), leaf.key.as_bytes()).expect("server config")
}

fn mutual_server_tls(ca: &Ca, client_ca: &Ca) -> ServerTlsConfig {
    server_tls(ca)
        .with_client_ca_pem(client_ca.pem.as_bytes())
        .expect("client CA")
}

fn client_tls(ca: &Ca) -> ClientTlsConfig {
    ClientTlsConfig::from_ca_pem(ca.pem.as_bytes()).expect("client config")
}

fn with_identity(config: ClientTlsConfig, leaf: &Leaf) -> ClientTlsConfig {
    config
        .with_identity_pem(leaf.cert.as_bytes(), leaf.key.as_bytes())
        .expect("client identity")
}

// ---- servers, channels and logs -----------------------------------------

/// Answers `who` with what the handler saw of the client's certificate.
#[derive(Clone, Default)]
struct WhoService;

static WHO: MethodDescriptor = MethodDescriptor {
    service: "test.Who",
    method: "who",
    idempotent: false,
    default_timeout: None,
};

impl ServiceHandler for WhoService {
    fn wire_name(&self) -> &'static str {
        "test.Who"
    }

    fn dispatch(&self, call: IncomingCall) {
        match call.method() {
            "who" => call.serve_unary(move |ctx: CallContext, _args: Empty| async move {
                let value = match ctx.peer_identity() {
                    None => "anonymous".to_owned(),
                    Some(id) => format!(
                        "cn={:?} subject={} dns={:?} uris={:?} der={}",
                        id.common_name(),
                        id.subject(),
                        id.dns_names(),
                        id.uris(),
                        id.certificate_der().len()
                    ),
                };
                Ok::<_, RpcError>(EchoReply { value })
            }),
            _ => call.reject_unknown_method(),
        }
    }
}

async fn start(tls: Option<ServerTlsConfig>) -> ServerHandle {
    let builder = Server::builder()
        .add_service(EchoService::default())
        .add_service(WhoService);
    let builder = match tls {
        Some(tls) => builder.tls(tls),
        None => builder,
    };
    builder.bind("127.0.0.1:0").await.expect("bind")
}

fn config(tls: Option<ClientTlsConfig>) -> ChannelConfig {
    ChannelConfig {
        tls,
        connect_timeout: Duration::from_secs(5),
        ..ChannelConfig::default()
    }
}

/// Connects to the server by name (`localhost:PORT`).
async fn connect(
    server: &ServerHandle,
    tls: Option<ClientTlsConfig>,
) -> Result<Channel, TransportError> {
    let target = format!("localhost:{}", server.local_addr().port());
    within("connect", Channel::connect_with(target, config(tls))).await
}

async fn echo(channel: &Channel, text: &str) -> Result<EchoReply, RpcError> {
    within(
        "echo",
        channel.unary(&ECHO, &args(text), &with_timeout(PATIENCE)),
    )
    .await
}

/// Shows the server still serves: a fresh, well-configured TLS call works.
async fn still_serves(server: &ServerHandle, good: ClientTlsConfig) {
    let channel = connect(server, Some(good))
        .await
        .expect("a good client connects");
    assert_eq!(
        echo(&channel, "still here").await.expect("echo").value,
        "still here"
    );
}

/// The TLS error of a failed connect or call, wherever it surfaced.
fn tls_error<T: std::fmt::Debug>(result: Result<T, TransportError>) -> TlsError {
    match result {
        Err(TransportError::Tls { source, .. }) => source,
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

/// Connects, then calls: the TLS error of whichever failed (under TLS 1.3
/// a client certificate is refused after the client's handshake ended, so
/// that error comes with the first call).
async fn failure(server: &ServerHandle, tls: Option<ClientTlsConfig>) -> TlsError {
    let result = match connect(server, tls).await {
        Ok(channel) => echo(&channel, "x").await.map_err(|e| match e {
            RpcError::Transport(e) => e,
            other => panic!("expected a transport error, got {other:?}"),
        }),
        Err(e) => Err(e),
    };
    tls_error(result)
}

/// Collects what the subscriber writes (the server's log).
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }

    /// Waits until the log holds `needle` (the server logs after its side
    /// of the handshake ends, which may be after the client's).
    async fn wait_for(&self, needle: &str) {
        let log = self.clone();
        let what = format!("the server to log {needle:?}");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !log.text().contains(needle) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; log:\n{}",
                log.text()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Log {
    type Writer = Log;

    fn make_writer(&'a self) -> Log {
        self.clone()
    }
}

/// Runs `test` on a current-thread runtime (so every task logs to this
/// test's subscriber) with the courier log at `info`.
fn with_log<F, Fut>(test: F)
where
    F: FnOnce(Log) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    with_log_at(tracing::Level::INFO, test);
}

/// [`with_log`] with the log at `level`.
fn with_log_at<F, Fut>(level: tracing::Level, test: F)
where
    F: FnOnce(Log) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let log = Log::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(log.clone())
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    tracing::subscriber::with_default(subscriber, || runtime.block_on(test(log)));
}

// ---- what works ----------------------------------------------------------

#[tokio::test]
async fn calls_work_over_tls_by_name_and_by_address() {
    let ca = Ca::new("test CA");
    let server = start(Some(server_tls(&ca))).await;
    assert!(server.speaks_tls());
    let by_name = connect(&server, Some(client_tls(&ca)))
        .await
        .expect("connect");
    assert_eq!(echo(&by_name, "hello").await.expect("echo").value, "hello");
    // Many calls at once share the connection (vectored writes through TLS).
    let calls = (0..200).map(|i| {
        let channel = by_name.clone();
        async move { echo(&channel, &i.to_string()).await }
    });
    for (i, reply) in futures_join(calls).await.into_iter().enumerate() {
        assert_eq!(reply.expect("echo").value, i.to_string());
    }
    // The certificate also holds 127.0.0.1.
    let by_address = within(
        "connect",
        Channel::connect_with(server.local_addr(), config(Some(client_tls(&ca)))),
    )
    .await
    .expect("connect by address");
    assert_eq!(echo(&by_address, "ip").await.expect("echo").value, "ip");
    // Without mutual TLS the handler sees no identity.
    let reply: EchoReply = by_name
        .unary::<_, _, courier::NoDeclaredError>(&WHO, &Empty {}, &with_timeout(PATIENCE))
        .await
        .expect("who");
    assert_eq!(reply.value, "anonymous");
}

/// Joins futures without another dependency.
async fn futures_join<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(within("a call", handle).await.expect("task"));
    }
    outputs
}

#[tokio::test]
async fn large_frames_cross_tls_whole() {
    let ca = Ca::new("test CA");
    let server = start(Some(server_tls(&ca))).await;
    let channel = connect(&server, Some(client_tls(&ca)))
        .await
        .expect("connect");
    let big = EchoArgs {
        size: 3 << 20,
        data: bytes::Bytes::from(vec![7u8; 2 << 20]),
        ..args(&(2 << 20).to_string())
    };
    let reply: BytesReply = within(
        "big",
        channel.unary::<_, _, courier::NoDeclaredError>(&BIG, &big, &with_timeout(PATIENCE)),
    )
    .await
    .expect("big");
    assert_eq!(reply.value.len(), 3 << 20);
}

#[tokio::test]
async fn mutual_tls_gives_the_handler_the_client_identity() {
    let ca = Ca::new("test CA");
    let client = ca.client();
    let server = start(Some(mutual_server_tls(&ca, &ca))).await;
    let channel = connect(&server, Some(with_identity(client_tls(&ca), &client)))
        .await
        .expect("connect");
    for _ in 0..2 {
        let reply: EchoReply = channel
            .unary::<_, _, courier::NoDeclaredError>(&WHO, &Empty {}, &with_timeout(PATIENCE))
            .await
            .expect("who");
        assert_eq!(
            reply.value,
            format!(
                "cn=Some(\"billing\") subject=O=Acme,CN=billing dns=[\"billing.internal\"] uris=[\"spiffe://acme.test/billing\"] der={}",
                client.der.len()
            )
        );
    }
}

#[tokio::test]
async fn a_balanced_channel_uses_tls_for_instances_registered_with_tls() {
    let ca = Ca::new("test CA");
    let server = start(Some(server_tls(&ca))).await;
    let registry = MemoryRegistry::new();
    let instance = ServiceInstance::from_host(SERVICE, "localhost", server.local_addr().port())
        .with_tls(server.speaks_tls());
    registry.register(instance).await.expect("register");
    let registry: Arc<dyn Registry> = Arc::new(registry);

    let options = BalanceOptions {
        channel: config(Some(client_tls(&ca))),
        ..BalanceOptions::default()
    };
    let tls = Channel::balanced(Arc::clone(&registry), SERVICE, options)
        .await
        .expect("balanced");
    assert_eq!(
        echo(&tls, "balanced").await.expect("echo").value,
        "balanced"
    );

    let plain = Channel::balanced(registry, SERVICE, BalanceOptions::default())
        .await
        .expect("balanced");
    match echo(&plain, "x").await {
        Err(RpcError::Transport(TransportError::Tls {
            source: TlsError::ServerRequiresTls,
            ..
        })) => {}
        other => panic!("expected ServerRequiresTls, got {other:?}"),
    }
}

#[tokio::test]
async fn a_tls_channel_refuses_an_instance_registered_without_tls() {
    let ca = Ca::new("test CA");
    let server = start(None).await;
    let registry = MemoryRegistry::new();
    registry
        .register(ServiceInstance::new(SERVICE, server.local_addr()))
        .await
        .expect("register");
    let options = BalanceOptions {
        channel: config(Some(client_tls(&ca))),
        ..BalanceOptions::default()
    };
    let channel = Channel::balanced(Arc::new(registry), SERVICE, options)
        .await
        .expect("balanced");
    let error = echo(&channel, "x").await.expect_err("no downgrade");
    assert!(
        error.to_string().contains("registered without TLS"),
        "{error}"
    );
}

// ---- what fails, clearly, on both sides ----------------------------------

#[test]
fn a_server_certificate_from_an_unknown_ca_is_refused() {
    with_log(|log| async move {
        let ca = Ca::new("test CA");
        let server = start(Some(server_tls(&ca))).await;
        let other = Ca::new("another CA");
        let error = failure(&server, Some(client_tls(&other))).await;
        assert!(
            matches!(error, TlsError::UntrustedCertificate { peer: "server" }),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .contains("the server's certificate is not signed by a trusted CA"),
            "{error}"
        );
        log.wait_for("the client refused this server's certificate (UnknownCA)")
            .await;
        still_serves(&server, client_tls(&ca)).await;
    });
}

#[test]
fn a_certificate_for_another_host_is_refused() {
    with_log(|log| async move {
        let ca = Ca::new("test CA");
        let server = start(Some(server_tls(&ca))).await;
        let wrong = client_tls(&ca).with_server_name("foo").expect("name");
        let error = failure(&server, Some(wrong)).await;
        let message = error.to_string();
        assert!(
            message.starts_with("the server presented a certificate for `localhost`")
                && message.contains(", not `foo`;"),
            "{message}"
        );
        log.wait_for("the client refused this server's certificate")
            .await;
        still_serves(&server, client_tls(&ca)).await;
    });
}

#[test]
fn an_expired_server_certificate_is_refused() {
    with_log(|log| async move {
        let ca = Ca::new("test CA");
        let server = start(Some(server_tls_with(&ca.issue(expired(server_params()))))).await;
        let error = failure(&server, Some(client_tls(&ca))).await;
        assert!(
            matches!(error, TlsError::Expired { peer: "server", .. }),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .contains("the server's certificate has expired"),
            "{error}"
        );
        log.wait_for("the client refused this server's certificate (CertificateExpired)")
            .await;
        let good = start(Some(server_tls(&ca))).await;
        still_serves(&good, client_tls(&ca)).await;
    });
}

#[test]
fn mutual_tls_refuses_a_client_without_a_certificate() {
    with_log(|log| async move {
        let ca = Ca::new("test CA");
        let server = start(Some(mutual_server_tls(&ca, &ca))).await;
        let error = failure(&server, Some(client_tls(&ca))).await;
        assert!(
            matches!(error, TlsError::ClientCertificateRequired),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .contains("the server requires a client certificate (mutual TLS)"),
            "{error}"
        );
        log.wait_for("the client sent no certificate, but this server requires one")
            .await;
        still_serves(&server, with_identity(client_tls(&ca), &ca.client())).await;
    });
}

#[test]
fn mutual_tls_refuses_an_expired_client_certificate() {
    with_log(|log| async move {
        let ca = Ca::new("test CA");
        let server = start(Some(mutual_server_tls(&ca, &ca))).await;
        let stale = ca.issue(expired(client_params()));
        let error = failure(&server, Some(with_identity(client_tls(&ca), &stale))).await;
        assert!(
            matches!(&error, TlsError::ClientCertificateRejected { alert } if alert == "CertificateExpired"),
            "{error:?}"
        );
        log.wait_for("the client's certificate has expired").await;
        still_serves(&server, with_identity(client_tls(&ca), &ca.client())).await;
    });
}

#[test]
fn mutual_tls_refuses_a_client_certificate_from_another_ca() {
    with_log(|log| async move {
        let ca = Ca::new("test CA");
        let server = start(Some(mutual_server_tls(&ca, &ca))).await;
        let stranger = Ca::new("another CA").client();
        let error = failure(&server, Some(with_identity(client_tls(&ca), &stranger))).await;
        assert!(
            matches!(&error, TlsError::ClientCertificateRejected { alert } if alert == "UnknownCA"),
            "{error:?}"
        );
        log.wait_for("the client's certificate is not signed by a trusted CA")
            .await;
        still_serves(&server, with_identity(client_tls(&ca), &ca.client())).await;
    });
}

#[test]
fn a_plaintext_client_is_told_the_server_speaks_tls() {
    with_log(|log| async move {
        let ca = Ca::new("test CA");
        let server = start(Some(server_tls(&ca))).await;
        let error = failure(&server, None).await;
        assert!(matches!(error, TlsError::ServerRequiresTls), "{error:?}");
        assert_eq!(
            error.to_string(),
            "the server speaks TLS; configure TLS on the channel (ChannelConfig::tls)"
        );
        log.wait_for("the client does not speak TLS (it sent plaintext Courier frames)")
            .await;
        still_serves(&server, client_tls(&ca)).await;
    });
}

#[test]
fn a_tls_client_is_told_the_server_is_plaintext() {
    with_log(|log| async move {
        let ca = Ca::new("test CA");
        let server = start(None).await;
        let error = failure(&server, Some(client_tls(&ca))).await;
        assert!(matches!(error, TlsError::ServerNotTls(_)), "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with("the server does not speak TLS"),
            "{error}"
        );
        log.wait_for("a TLS client connected, but this server has no TLS configured")
            .await;
        let channel = connect(&server, None).await.expect("plaintext connects");
        assert_eq!(echo(&channel, "plain").await.expect("echo").value, "plain");
    });
}

#[tokio::test]
async fn a_refusal_before_the_handshake_is_reported_as_such() {
    let ca = Ca::new("test CA");
    let server = Server::builder()
        .add_service(EchoService::default())
        .tls(server_tls(&ca))
        .max_connections(1)
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let first = connect(&server, Some(client_tls(&ca)))
        .await
        .expect("connect");
    assert_eq!(echo(&first, "one").await.expect("echo").value, "one");
    let error = tls_error(connect(&server, Some(client_tls(&ca))).await);
    let message = error.to_string();
    assert!(
        matches!(error, TlsError::RefusedBeforeTls(_))
            && message.starts_with(
                "the server refused the connection before the TLS handshake: status overloaded (7)"
            )
            && message.contains("too many connections"),
        "{message}"
    );
    drop(first);
}

#[test]
fn a_stalled_handshake_is_cut_off_and_does_not_hold_the_server() {
    with_log(|log| async move {
        let ca = Ca::new("test CA");
        // Long enough for the good client's handshake on a loaded machine;
        // the stalled one is cut off after it.
        let tls = server_tls(&ca).with_handshake_timeout(Duration::from_secs(1));
        let server = start(Some(tls)).await;
        // Sends one byte of a TLS record and stalls.
        let mut stalled = tokio::net::TcpStream::connect(server.local_addr())
            .await
            .expect("connect");
        stalled.write_all(&[0x16]).await.expect("write");
        // Others are served meanwhile.
        still_serves(&server, client_tls(&ca)).await;
        log.wait_for("the TLS handshake did not finish within 1s")
            .await;
        let mut buf = [0u8; 16];
        let read = within("the stalled connection to close", async {
            tokio::io::AsyncReadExt::read(&mut stalled, &mut buf).await
        })
        .await;
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    });
}

/// A client that goes away without TLS's close_notify (every dropped
/// channel) is a peer that closed, as on plain TCP, not a failed read:
/// its calls in flight are left to finish.
#[test]
fn a_tls_peer_that_drops_its_socket_closed_the_connection() {
    with_log_at(tracing::Level::DEBUG, |log| async move {
        let ca = Ca::new("test CA");
        let server = start(Some(server_tls(&ca))).await;
        let channel = connect(&server, Some(client_tls(&ca)))
            .await
            .expect("connect");
        assert_eq!(echo(&channel, "hi").await.expect("echo").value, "hi");
        drop(channel);
        log.wait_for("peer closed the connection").await;
        assert!(!log.text().contains("read failed"), "{}", log.text());
    });
}

// ---- configuration errors ------------------------------------------------

#[test]
fn configuration_errors_say_what_is_wrong() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.pem");
    let error = ServerTlsConfig::from_pem_files(&missing, &missing).expect_err("missing");
    assert!(
        error
            .to_string()
            .starts_with("cannot read the certificate chain file"),
        "{error}"
    );

    let ca = Ca::new("test CA");
    let leaf = ca.server();
    let error = ServerTlsConfig::from_pem(leaf.key.as_bytes(), leaf.key.as_bytes())
        .expect_err("a key is not a certificate");
    assert!(
        error
            .to_string()
            .contains("it holds no `-----BEGIN CERTIFICATE-----` block"),
        "{error}"
    );
    let error = ServerTlsConfig::from_pem(leaf.cert.as_bytes(), leaf.cert.as_bytes())
        .expect_err("a certificate is not a key");
    assert!(error.to_string().contains("PRIVATE KEY"), "{error}");
    let other = ca.server();
    let error = ServerTlsConfig::from_pem(leaf.cert.as_bytes(), other.key.as_bytes())
        .expect_err("mismatched key");
    assert!(
        error
            .to_string()
            .contains("the private key does not belong to the certificate"),
        "{error}"
    );
    let error = client_tls(&ca)
        .with_server_name("not a name!")
        .expect_err("bad name");
    assert!(matches!(error, TlsError::InvalidServerName(_)), "{error:?}");

    // And from files, the ordinary way.
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    let roots = dir.path().join("ca.pem");
    std::fs::write(&cert, &leaf.cert).expect("write");
    std::fs::write(&key, &leaf.key).expect("write");
    std::fs::write(&roots, &ca.pem).expect("write");
    let server = ServerTlsConfig::from_pem_files(&cert, &key)
        .expect("server files")
        .with_client_ca_pem_file(&roots)
        .expect("client CA file");
    assert!(server.requires_client_certificate());
    assert_eq!(
        server.handshake_timeout(),
        courier::tls::DEFAULT_HANDSHAKE_TIMEOUT
    );
    ClientTlsConfig::from_ca_pem_file(&roots)
        .expect("roots file")
        .with_identity_pem_files(&cert, &key)
        .expect("identity files");
}

#[tokio::test]
async fn serve_stream_serves_a_duplex_as_is_even_on_a_tls_server() {
    let ca = Ca::new("test CA");
    let server = start(Some(server_tls(&ca))).await;
    let (mut client_end, server_end) = tokio::io::duplex(64 * 1024);
    let peer: SocketAddr = "10.1.2.3:4567".parse().expect("addr");
    server.serve_stream(server_end, peer);
    client_end
        .write_all(&RawRequest::echo(5, &args("in memory")).encode())
        .await
        .expect("write");
    let mut buf = bytes::BytesMut::new();
    let mut decoder = courier::protocol::FrameDecoder::new(1 << 20);
    let frame = within("the answer", async {
        loop {
            if let Some(frame) = decoder.decode(&mut buf).expect("frame") {
                return frame;
            }
            let read = tokio::io::AsyncReadExt::read_buf(&mut client_end, &mut buf)
                .await
                .expect("read");
            assert!(read > 0, "closed before answering");
        }
    })
    .await;
    assert_eq!(frame.header.request_id, 5);
    assert_eq!(frame.header.status, 0);
    let reply: EchoReply = prost::Message::decode(frame.body).expect("reply");
    assert_eq!(reply.value, "in memory");
}
