//! Interop with Java's Apache Curator service discovery, both ways, against
//! a real ZooKeeper: the Curator client (`tests/java/CuratorInterop.java`,
//! compiled at test time against Debian's Curator 5 jars) lists a provider
//! that `demo serve` registered, and `demo call` finds and calls a provider
//! that only Curator registered.
//!
//! Needs Java 17 (java, javac), Debian's `zookeeper` and
//! `libcurator-discovery-java` (`scripts/ensure-zookeeper`,
//! `scripts/ensure-curator`); a test that cannot get them fails, it is never
//! skipped.

mod support;

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::java::{Curator, curator};
use support::process::Process;
use support::zookeeper::ZooKeeperServer;

const DEMO: &str = env!("CARGO_BIN_EXE_demo");
const BASE: &str = "/courier";
const SERVICE: &str = "hello.Greeter";
/// The longest any one step may take (a JVM start on a busy machine).
const PATIENCE: Duration = Duration::from_secs(30);

/// Starts ZooKeeper while the Java program compiles (both take a JVM start).
fn zookeeper_and_curator() -> (ZooKeeperServer, &'static Curator) {
    let compiling = thread::spawn(curator);
    let zookeeper = ZooKeeperServer::start();
    let curator = compiling
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    (zookeeper, curator)
}

fn registry_url(zookeeper: &ZooKeeperServer) -> String {
    format!("zk://{}{BASE}", zookeeper.connect_string())
}

/// `demo serve --listen 127.0.0.1:0 --registry URL`, with its address.
fn demo_serve(registry: &str) -> (Process, String) {
    let mut serve = Process::spawn(
        "demo serve",
        Command::new(DEMO).args(["serve", "--listen", "127.0.0.1:0", "--registry", registry]),
    );
    let addr = serve.line_starting_with("listening on ", Instant::now() + PATIENCE);
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "demo serve should print its real address, got {addr:?}"
    );
    (serve, addr)
}

/// Runs a command to its end (with a deadline): status, stdout lines,
/// stderr.
fn run(what: &str, command: &mut Command) -> (std::process::ExitStatus, Vec<String>, String) {
    Process::spawn(what, command).finish(Instant::now() + PATIENCE)
}

/// `registrationTimeUTC` of a node's JSON.
fn registration_time(json: &str) -> u64 {
    json.split("\"registrationTimeUTC\":")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|time| time.parse().ok())
        .unwrap_or_else(|| panic!("no numeric registrationTimeUTC in {json}"))
}

/// A Curator client lists the instance `demo serve` registered, and reads
/// the node (which has no `enabled`) as enabled, with Courier's payload.
#[test]
fn curator_lists_a_courier_provider() {
    let (zookeeper, curator) = zookeeper_and_curator();
    let (_serve, addr) = demo_serve(&registry_url(&zookeeper));
    let (port, connect) = (
        addr.rsplit(':').next().expect("port"),
        zookeeper.connect_string(),
    );

    let (status, lines, stderr) = run(
        "CuratorInterop list",
        &mut curator.command(&[
            "list",
            "--serializer",
            "json",
            &connect,
            BASE,
            SERVICE,
            "1",
            "15000",
        ]),
    );
    assert!(
        status.success(),
        "CuratorInterop list failed ({status}): {lines:?}\n{stderr}"
    );
    assert_eq!(
        lines.len(),
        1,
        "Curator should list exactly one {SERVICE}; stdout {lines:?}, stderr:\n{stderr}"
    );
    let fields: Vec<&str> = lines[0].split('\t').collect();
    let [listed, id, enabled, payload, raw] = fields[..] else {
        panic!(
            "a list line has five tab-separated fields, got {:?}",
            lines[0]
        );
    };
    eprintln!("Courier wrote: {raw}");
    eprintln!("Curator read: {listed} id={id} {enabled} payload={payload}");
    assert_eq!(listed, addr, "Curator lists demo serve's address and port");
    assert_eq!(
        enabled, "enabled=true",
        "a node without `enabled` reads as enabled"
    );
    assert!(
        payload.contains(r#""weight":"100""#)
            && payload.contains(r#""serializers":"#)
            && payload.contains(r#""protocol":"courier/1""#),
        "Curator reads Courier's payload as a map of strings: {payload}"
    );
    // The exact bytes of DISCOVERY.md, with the payload as Curator read it.
    let payload_fields = payload
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .expect("a JSON object");
    let expected = format!(
        concat!(
            r#"{{"name":"{service}","id":"{id}","address":"127.0.0.1","port":{port},"#,
            r#""sslPort":null,"payload":{{"@class":"java.util.LinkedHashMap",{payload}}},"#,
            r#""registrationTimeUTC":{time},"serviceType":"DYNAMIC","uriSpec":null}}"#
        ),
        service = SERVICE,
        id = id,
        port = port,
        payload = payload_fields,
        time = registration_time(raw),
    );
    assert_eq!(raw, expected, "the node Courier wrote");
}

/// A provider registered only by Curator, with the serializer mode that
/// writes `"enabled":true` (`new JsonInstanceSerializer<>(Map.class,
/// false)`) and a plain map payload without Courier's keys, is found and
/// called by `demo call --registry zk://...`; once Curator unregisters it,
/// it is gone for Courier too.
#[test]
fn courier_calls_a_provider_registered_by_curator() {
    let (zookeeper, curator) = zookeeper_and_curator();
    let (_serve, addr) = demo_serve("memory");
    let port = addr.rsplit(':').next().expect("port").to_owned();
    let url = registry_url(&zookeeper);

    let (mut registrar, raw, id) = curator_register(curator, &zookeeper, "enabled", &port);
    eprintln!("Curator (JsonInstanceSerializer(Map.class, false)) wrote: {raw}");
    assert_eq!(
        raw,
        curator_node(&id, &port, registration_time(&raw), r#","enabled":true"#),
        "the node Curator wrote"
    );
    assert_eq!(demo_call(&url), Ok("Hello, Bob!".to_owned()));

    // Closing its stdin makes the registrar unregister and exit.
    registrar.close_stdin();
    let (status, _, stderr) = registrar.finish(Instant::now() + PATIENCE);
    assert!(
        status.success(),
        "CuratorInterop register failed ({status}):\n{stderr}"
    );
    let stderr = demo_call(&url).expect_err("nobody is registered any more");
    assert!(
        stderr.contains(&format!("no instance of {SERVICE}")),
        "demo call should say it found no instance:\n{stderr}"
    );
}

/// With the serializer Curator users get by default (none given to
/// `ServiceDiscoveryBuilder`, which is `new
/// JsonInstanceSerializer<>(Map.class)`: Curator 5.4.0's "compatible" mode),
/// Curator writes no `enabled`: exactly the shape Courier writes. Courier
/// calls that provider too.
#[test]
fn curators_default_serializer_writes_the_courier_shape() {
    let (zookeeper, curator) = zookeeper_and_curator();
    let (_serve, addr) = demo_serve("memory");
    let port = addr.rsplit(':').next().expect("port").to_owned();

    let (_registrar, raw, id) = curator_register(curator, &zookeeper, "builder", &port);
    eprintln!("Curator (ServiceDiscoveryBuilder's default serializer) wrote: {raw}");
    assert_eq!(
        raw,
        curator_node(&id, &port, registration_time(&raw), ""),
        "the node Curator wrote with its default serializer"
    );
    assert_eq!(
        demo_call(&registry_url(&zookeeper)),
        Ok("Hello, Bob!".to_owned())
    );
}

/// Starts `CuratorInterop register --serializer MODE` for `hello.Greeter` at
/// 127.0.0.1:`port`; returns it (it stays registered until dropped), the
/// node data it wrote and the instance id.
fn curator_register(
    curator: &Curator,
    zookeeper: &ZooKeeperServer,
    mode: &str,
    port: &str,
) -> (Process, String, String) {
    let connect = zookeeper.connect_string();
    let mut registrar = Process::spawn(
        &format!("CuratorInterop register --serializer {mode}"),
        &mut curator.command(&[
            "register",
            "--serializer",
            mode,
            &connect,
            BASE,
            SERVICE,
            "127.0.0.1",
            port,
        ]),
    )
    .with_grace(Duration::from_secs(5));
    let deadline = Instant::now() + PATIENCE;
    let raw = registrar.line_starting_with("node ", deadline);
    let id = registrar.line_starting_with("registered ", deadline);
    (registrar, raw, id)
}

/// The node data Curator writes for the test's instance: `tail` is what
/// comes after `uriSpec` (`,"enabled":true` or nothing).
fn curator_node(id: &str, port: &str, time: u64, tail: &str) -> String {
    format!(
        concat!(
            r#"{{"name":"{service}","id":"{id}","address":"127.0.0.1","port":{port},"#,
            r#""sslPort":null,"payload":{{"@class":"java.util.LinkedHashMap","registeredBy":"curator"}},"#,
            r#""registrationTimeUTC":{time},"serviceType":"DYNAMIC","uriSpec":null{tail}}}"#
        ),
        service = SERVICE,
        id = id,
        port = port,
        time = time,
        tail = tail,
    )
}

/// `demo call --registry URL Bob`: its stdout if it succeeded, its stderr
/// if it exited 1.
fn demo_call(url: &str) -> Result<String, String> {
    let (status, lines, stderr) = run(
        "demo call",
        Command::new(DEMO).args(["call", "--registry", url, "Bob"]),
    );
    match status.code() {
        Some(0) => Ok(lines.join("\n")),
        Some(1) => Err(stderr),
        _ => panic!("demo call ended with {status}: {lines:?}\n{stderr}"),
    }
}
