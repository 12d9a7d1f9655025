//! `demo serve` and `demo call` as separate processes, over real sockets.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const DEMO: &str = env!("CARGO_BIN_EXE_demo");

/// A `demo serve` process, stopped (SIGTERM, then checked) on drop.
struct ServeProcess {
    child: Child,
    addr: String,
}

impl ServeProcess {
    fn start() -> ServeProcess {
        ServeProcess::start_with(&[])
    }

    /// `demo serve` with more arguments.
    fn start_with(extra: &[&str]) -> ServeProcess {
        let mut child = Command::new(DEMO)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn demo serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut first_line = String::new();
        BufReader::new(stdout)
            .read_line(&mut first_line)
            .expect("read the first line of demo serve");
        let addr = first_line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!("first line should be `listening on IP:PORT`, got {first_line:?}")
            })
            .to_owned();
        assert!(
            !addr.ends_with(":0"),
            "the real port is printed, got {addr}"
        );
        ServeProcess { child, addr }
    }

    /// Sends SIGTERM and waits (with a deadline) for a clean exit.
    fn terminate(mut self) -> std::process::ExitStatus {
        send_sigterm(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for demo serve") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "demo serve did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn send_sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM {pid} failed");
}

fn demo_call(args: &[&str]) -> Output {
    Command::new(DEMO)
        .arg("call")
        .args(args)
        .output()
        .expect("run demo call")
}

#[test]
fn serve_and_call_over_protobuf_and_json() {
    let server = ServeProcess::start();
    for serializer in ["protobuf", "json"] {
        let out = demo_call(&["--connect", &server.addr, "--serializer", serializer, "Bob"]);
        assert!(
            out.status.success(),
            "demo call over {serializer} failed: {out:?}"
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Hello, Bob!");
    }
    let status = server.terminate();
    assert!(
        status.success(),
        "demo serve should exit 0 after SIGTERM, got {status}"
    );
}

#[test]
fn empty_name_comes_back_as_the_typed_declared_error() {
    let server = ServeProcess::start();
    for serializer in ["protobuf", "json"] {
        let out = demo_call(&["--connect", &server.addr, "--serializer", serializer, ""]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "demo call \"\" must exit 1: {out:?}"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("declared error hello.EmptyName"),
            "stderr should name the typed error over {serializer}: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
    assert!(server.terminate().success());
}

#[test]
fn call_to_a_closed_port_fails_with_exit_1() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let out = demo_call(&["--connect", &format!("127.0.0.1:{port}"), "Bob"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("error:"));
}

#[test]
fn in_process_demo_runs_and_exits_0() {
    let out = Command::new(DEMO).output().expect("run demo");
    assert!(out.status.success(), "demo failed: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("say_hello(\"Courier\") -> \"Hello, Courier!\""),
        "{stdout}"
    );
    assert!(stdout.contains("declared error EmptyName"), "{stdout}");
    assert!(
        stdout.contains("response metadata greetings = "),
        "{stdout}"
    );
    assert!(
        stdout.contains("count(3, 10) -> items [1, 2, 3]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("count(101, 0) -> 100 items, then declared error TooMany { max: 100 }"),
        "{stdout}"
    );
    assert!(stdout.contains("done"), "{stdout}");
}

#[test]
fn bad_usage_exits_2() {
    let out = Command::new(DEMO)
        .args(["call", "Bob"])
        .output()
        .expect("run demo");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// Writes a CA, a server certificate (`localhost`, 127.0.0.1) and a client
/// certificate, made now with rcgen, as PEM files into `dir`.
fn write_certificates(dir: &std::path::Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        SanType,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "demo CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().expect("key");
    let ca_cert = ca.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::from_params(&ca, &ca_key);
    let write = |name: &str, text: String| std::fs::write(dir.join(name), text).expect("write");
    write("ca.pem", ca_cert.pem());
    let mut server = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    server
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    let mut client = CertificateParams::new(vec!["demo-client".to_owned()]).expect("params");
    client
        .distinguished_name
        .push(DnType::CommonName, "demo client");
    for (name, params) in [("server", server), ("client", client)] {
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &issuer).expect("sign");
        write(&format!("{name}.pem"), cert.pem());
        write(&format!("{name}.key"), key.serialize_pem());
    }
}

#[test]
fn serve_and_call_over_mutual_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_certificates(dir.path());
    let file = |name: &str| dir.path().join(name).display().to_string();
    let server = ServeProcess::start_with(&[
        "--tls-cert",
        &file("server.pem"),
        "--tls-key",
        &file("server.key"),
        "--tls-ca",
        &file("ca.pem"),
    ]);
    let (ca, cert, key) = (file("ca.pem"), file("client.pem"), file("client.key"));
    let mutual = [
        "--connect",
        &server.addr,
        "--tls-ca",
        &ca,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ];
    let out = demo_call(&[&mutual[..], &["Bob"]].concat());
    assert!(
        out.status.success(),
        "demo call over mutual TLS failed: {out:?}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Hello, Bob!");

    let failures: [(&[&str], &str); 3] = [
        (
            &["--connect", &server.addr, "--tls-ca", &ca],
            "the server requires a client certificate (mutual TLS)",
        ),
        (
            &["--connect", &server.addr],
            "the server speaks TLS; configure TLS on the channel",
        ),
        (
            &[&mutual[..], &["--tls-server-name", "foo"]].concat(),
            ", not `foo`;",
        ),
    ];
    for (args, expected) in failures {
        let out = demo_call(&[args, &["Bob"]].concat());
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    // The server goes on serving.
    let out = demo_call(&[&mutual[..], &["Alice"]].concat());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Hello, Alice!",
        "{out:?}"
    );
    assert!(server.terminate().success());
}
