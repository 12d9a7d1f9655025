//! Server reflection over real sockets: the services a server lists and
//! the `.rpc` sources idlc embedded in their generated code, compared with
//! the files on disk.

use std::path::Path;

use courier::builtin::reflection::{FileContainingError, IdlFile, ReflectionClient, ServiceInfo};
use courier::client::{Channel, Stub};
use courier::server::{IncomingCall, Server, ServerHandle, ServiceHandler};
use courier::{CallContext, RpcError, StatusCode};
use courier_tests::fixtures::imports::Invoice;
use courier_tests::fixtures::imports::billing::{Billing, BillingServer, TotalError};
use courier_tests::fixtures::imports_common::Money;
use idl_examples::greeter::HelloGreeter;
use idl_examples::hello::greeter::GreeterServer;

/// A `Billing` that bills nothing.
struct FreeBilling;

impl Billing for FreeBilling {
    async fn total(
        &self,
        _ctx: CallContext,
        _invoice: Invoice,
    ) -> Result<Money, RpcError<TotalError>> {
        Ok(Money::default())
    }
}

/// A service written by hand: no embedded source.
struct HandWritten;

impl ServiceHandler for HandWritten {
    fn wire_name(&self) -> &'static str {
        "manual.Thing"
    }

    fn dispatch(&self, call: IncomingCall) {
        call.reject_unknown_method();
    }
}

async fn start(reflection: bool) -> ServerHandle {
    let mut builder = Server::builder()
        .add_service(GreeterServer::new(HelloGreeter::default()))
        .add_service(BillingServer::new(FreeBilling))
        .add_service(HandWritten)
        .enable_health();
    if reflection {
        builder = builder.enable_reflection();
    }
    builder.bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0")
}

async fn client(server: &ServerHandle) -> ReflectionClient {
    let channel = Channel::connect(server.local_addr())
        .await
        .expect("connect");
    ReflectionClient::new(channel)
}

fn on_disk(name: &str, path: &str) -> IdlFile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    IdlFile {
        name: name.to_owned(),
        source: std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_every_service_with_its_file() {
    let server = start(true).await;
    let services = client(&server)
        .await
        .list_services()
        .await
        .expect("list_services");
    let info = |name: &str, file: &str| ServiceInfo {
        name: name.to_owned(),
        file: file.to_owned(),
    };
    assert_eq!(
        services,
        [
            info("courier.Health", "health.rpc"),
            info("courier.Reflection", "reflection.rpc"),
            info("fixtures.orders.Billing", "imports.rpc"),
            info("hello.Greeter", "hello.rpc"),
            info("manual.Thing", ""),
        ]
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_returns_the_exact_sources() {
    let server = start(true).await;
    let client = client(&server).await;
    let greeter = client
        .file_containing("hello.Greeter")
        .await
        .expect("the greeter's file");
    assert_eq!(
        greeter,
        [on_disk("hello.rpc", "../idl-examples/idl/hello.rpc")]
    );

    let billing = client
        .file_containing("fixtures.orders.Billing")
        .await
        .expect("the billing file");
    assert_eq!(
        billing,
        [
            on_disk("imports.rpc", "../idlc/tests/fixtures/codegen/imports.rpc"),
            on_disk(
                "imports_common.rpc",
                "../idlc/tests/fixtures/codegen/imports_common.rpc"
            ),
        ]
    );

    for (service, file) in [
        ("courier.Health", "health.rpc"),
        ("courier.Reflection", "reflection.rpc"),
    ] {
        let files = client.file_containing(service).await.expect(service);
        assert_eq!(files, [on_disk(file, &format!("../runtime/idl/{file}"))]);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_services_and_services_without_source_are_unknown_service() {
    let server = start(true).await;
    let client = client(&server).await;
    for service in ["nope.Nothing", "manual.Thing", ""] {
        match client.file_containing(service).await {
            Err(RpcError::Declared(FileContainingError::UnknownService(e))) => {
                assert_eq!(e.service, service);
            }
            other => panic!("{service}: expected UnknownService, got {other:?}"),
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_is_off_by_default() {
    let server = start(false).await;
    let error = client(&server)
        .await
        .list_services()
        .await
        .expect_err("reflection is off");
    assert_eq!(error.code(), StatusCode::UnknownService);
    server.shutdown().await;
}
