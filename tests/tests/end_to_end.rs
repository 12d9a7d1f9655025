//! Generated stubs against a generated server adapter, over real sockets on
//! 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use courier::client::Stub;
use courier::client::{CallOptions, Channel, ResponseMetadataCapture};
use courier::server::{Server, ServerHandle};
use courier::{RpcError, Serializer, StatusCode};
use idl_examples::greeter::HelloGreeter;
use idl_examples::hello::greeter::{GreeterClient, GreeterServer, SayHelloError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn start_greeter() -> (ServerHandle, Arc<HelloGreeter>) {
    let greeter = Arc::new(HelloGreeter::default());
    let server = Server::builder()
        .add_service(GreeterServer::from_arc(Arc::clone(&greeter)))
        .bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    (server, greeter)
}

async fn client_for(server: &ServerHandle) -> GreeterClient {
    let channel = Channel::connect(server.local_addr())
        .await
        .expect("connect");
    GreeterClient::new(channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_calls_on_one_client_each_get_their_own_answer() {
    let (server, _) = start_greeter().await;
    let client = client_for(&server).await;
    let calls = (0..100).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            let name = format!("caller-{i}");
            // Different sleeps make the answers come back out of order.
            let _ = client.sleep((100 - i) % 7).await.expect("sleep");
            let greeting = client.say_hello(name.clone()).await.expect("say_hello");
            (name, greeting)
        })
    });
    let results = futures_join_all(calls).await;
    assert_eq!(results.len(), 100);
    for (name, greeting) in results {
        assert_eq!(greeting, format!("Hello, {name}!"));
    }
    server.shutdown().await;
}

async fn futures_join_all<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        out.push(handle.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn declared_error_arrives_typed_over_both_serializers() {
    let (server, _) = start_greeter().await;
    let client = client_for(&server).await;
    for serializer in Serializer::ALL {
        let client = client.clone().with_options(CallOptions {
            serializer,
            ..CallOptions::default()
        });
        match client.say_hello("").await {
            Err(RpcError::Declared(SayHelloError::EmptyName(error))) => {
                assert!(!error.hint.is_empty())
            }
            other => panic!("expected EmptyName over {serializer}, got {other:?}"),
        }
        assert_eq!(client.say_hello("Ann").await.expect("call"), "Hello, Ann!");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_stub_reads_the_response_metadata_in_every_call_mode() {
    let (server, _) = start_greeter().await;
    let capture = ResponseMetadataCapture::new();
    let client = client_for(&server)
        .await
        .capture_response_metadata(&capture);
    let greetings = || {
        capture
            .take()
            .and_then(|metadata| metadata.get("greetings").map(str::to_owned))
    };
    client.say_hello("Ann").await.expect("a greeting");
    assert_eq!(greetings().as_deref(), Some("1"));
    client.say_hello_future("Bob").await.expect("a greeting");
    assert_eq!(greetings().as_deref(), Some("2"));
    let (done, called_back) = tokio::sync::oneshot::channel();
    client.say_hello_with_callback("Cy", move |result| {
        let _ = done.send(result);
    });
    called_back.await.expect("called back").expect("a greeting");
    assert_eq!(greetings().as_deref(), Some("3"));
    let blocking = tokio::task::spawn_blocking({
        let client = client.clone();
        move || client.say_hello_blocking("Di")
    });
    blocking.await.expect("no panic").expect("a greeting");
    assert_eq!(greetings().as_deref(), Some("4"));
    // A declared error is answered before the greeter counts: no metadata.
    let result = client.say_hello("").await;
    assert!(matches!(result, Err(RpcError::Declared(_))), "{result:?}");
    assert_eq!(capture.take(), Some(courier::Metadata::new()));
}

#[tokio::test]
async fn oneway_call_reaches_the_handler() {
    let (server, greeter) = start_greeter().await;
    let client = client_for(&server).await;
    let mut events = greeter.events();
    client.notify("first").await.expect("oneway send");
    client.notify("second").await.expect("oneway send");
    let seen = tokio::time::timeout(Duration::from_secs(10), events.wait_for(|e| e.len() == 2))
        .await
        .expect("events arrive within 10 s")
        .expect("greeter alive")
        .clone();
    assert_eq!(seen, vec!["first".to_owned(), "second".to_owned()]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_call_past_its_timeout_fails_with_deadline_exceeded() {
    let (server, _) = start_greeter().await;
    let client = client_for(&server).await.with_options(CallOptions {
        timeout: Some(Duration::from_millis(30)),
        ..CallOptions::default()
    });
    let error = client.sleep(5_000).await.expect_err("must time out");
    assert_eq!(error.code(), StatusCode::DeadlineExceeded, "{error}");
    // The connection is still good afterwards.
    assert_eq!(client.sleep(1).await.expect("short sleep"), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_magic_closes_that_connection_and_the_server_serves_the_next_client() {
    let (server, _) = start_greeter().await;
    let mut raw = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let mut frame = vec![0xBA, 0xD0, 1, 1, 1, 0];
    frame.extend_from_slice(&1u64.to_be_bytes());
    frame.extend_from_slice(&0u32.to_be_bytes());
    raw.write_all(&frame).await.expect("write");
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), raw.read(&mut buf))
        .await
        .expect("server closes within 10 s");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "connection must be closed, read {read:?}"
    );

    let client = client_for(&server).await;
    assert_eq!(
        client.say_hello("next").await.expect("call"),
        "Hello, next!"
    );
    server.shutdown().await;
}
