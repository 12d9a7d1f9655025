//! `courier call` and `describe` over mutual TLS, with certificates made
//! at test time: the TLS flags reach the runtime's TLS, and a call without
//! them, or with a CA that does not trust the server, fails with exit 4.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use courier::server::Server;
use courier::tls::ServerTlsConfig;
use idl_examples::greeter::HelloGreeter;
use idl_examples::hello::greeter::GreeterServer;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};

const COURIER: &str = env!("CARGO_BIN_EXE_courier");

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let pem = params.self_signed(&key).expect("self-signed").pem();
        Ca { params, key, pem }
    }

    /// (certificate PEM, key PEM) for `names`, for `usage`.
    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("params");
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .expect("signed");
        (cert.pem(), key.serialize_pem())
    }
}

fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(COURIER)
        .args(args)
        .output()
        .expect("courier runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn calls_over_mutual_tls() {
    let ca = Ca::new("courier cli test CA");
    let (server_cert, server_key) = ca.issue(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) =
        ca.issue(&["cli.internal"], ExtendedKeyUsagePurpose::ClientAuth);
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("written");
        path.display().to_string()
    };
    let ca_file = write("ca.pem", &ca.pem);
    let cert_file = write("client.pem", &client_cert);
    let key_file = write("client.key", &client_key);
    let other_ca = write("other.pem", &Ca::new("someone else").pem);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let tls = ServerTlsConfig::from_pem(server_cert.as_bytes(), server_key.as_bytes())
        .expect("server config")
        .with_client_ca_pem(ca.pem.as_bytes())
        .expect("client CA");
    let server = runtime
        .block_on(
            Server::builder()
                .add_service(GreeterServer::new(HelloGreeter::default()))
                .enable_reflection()
                .tls(tls)
                .bind("127.0.0.1:0"),
        )
        .expect("bind");
    let addr = server.local_addr().to_string();
    let tls_args = [
        "--tls-ca",
        &ca_file,
        "--tls-cert",
        &cert_file,
        "--tls-key",
        &key_file,
        "--tls-server-name",
        "localhost",
    ];

    let mut args = vec![
        "call",
        "-s",
        "protobuf",
        &addr,
        "hello.Greeter/say_hello",
        r#"{"name":"TLS"}"#,
    ];
    args.extend(tls_args);
    let (code, stdout, stderr) = run(&args);
    assert_eq!(
        (code, stdout.as_str()),
        (0, "\"Hello, TLS!\"\n"),
        "{stderr}"
    );

    let mut describe = vec!["describe", &addr, "hello.Greeter"];
    describe.extend(tls_args);
    let (code, stdout, stderr) = run(&describe);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("service Greeter {"), "{stdout}");

    let (code, _, stderr) = run(&[
        "call",
        "--timeout",
        "2s",
        &addr,
        "hello.Greeter/say_hello",
        "{}",
    ]);
    assert_eq!(code, 4, "plaintext to a TLS server: {stderr}");
    let (code, _, stderr) = run(&[
        "call",
        "--tls-ca",
        &other_ca,
        "--tls-cert",
        &cert_file,
        "--tls-key",
        &key_file,
        &addr,
        "hello.Greeter/say_hello",
        "{}",
    ]);
    assert_eq!(code, 4, "an untrusted server: {stderr}");
    let (code, _, stderr) = run(&[
        "call",
        "--tls-ca",
        "/nonexistent.pem",
        &addr,
        "hello.Greeter/say_hello",
        "{}",
    ]);
    assert_eq!(code, 2, "a missing CA file is bad input: {stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    let (code, _, _) = run(&[
        "call",
        "--tls-cert",
        &cert_file,
        &addr,
        "hello.Greeter/say_hello",
        "{}",
    ]);
    assert_eq!(code, 2, "--tls-cert needs --tls-key and --tls-ca");
    runtime.block_on(server.shutdown());
}
