//! Per-call spans on both sides, when a subscriber wants them.

mod captured_log;
mod common;

use captured_log::CapturedLog;
use common::*;
use courier::{NoDeclaredError, RpcError};
use tracing_subscriber::fmt::format::FmtSpan;

#[test]
fn each_call_has_a_span_on_each_side_with_status_and_latency() {
    let captured = CapturedLog::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    // A current-thread runtime: every task runs under this subscriber.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let server = TestServer::start().await;
            let channel = server.channel().await;
            let reply: EchoReply = channel
                .unary::<_, _, NoDeclaredError>(&ECHO, &args("traced"), &options())
                .await
                .expect("echo");
            assert_eq!(reply.value, "traced");
            let failed: Result<EchoReply, RpcError> =
                channel.unary(&NO_SUCH_METHOD, &args(""), &options()).await;
            assert!(failed.is_err());
            eventually("the server to be idle", || server.handle.in_flight() == 0).await;
        });
    });
    let text = captured.text();
    let client_ok = text
        .lines()
        .find(|line| line.contains("courier.call") && line.contains("method=\"echo\""))
        .unwrap_or_else(|| panic!("no client span in:\n{text}"));
    assert!(client_ok.contains("service=\"test.Echo\""), "{client_ok}");
    assert!(client_ok.contains("request_id="), "{client_ok}");
    assert!(client_ok.contains("status=0"), "{client_ok}");
    assert!(client_ok.contains("latency_us="), "{client_ok}");
    let client_failed = text
        .lines()
        .find(|line| line.contains("courier.call") && line.contains("no_such_method"))
        .unwrap_or_else(|| panic!("no span for the failed call in:\n{text}"));
    assert!(client_failed.contains("status=3"), "{client_failed}");
    let server_ok = text
        .lines()
        .find(|line| line.contains("courier.serve") && line.contains("method=echo"))
        .unwrap_or_else(|| panic!("no server span in:\n{text}"));
    assert!(server_ok.contains("peer=127.0.0.1:"), "{server_ok}");
    assert!(server_ok.contains("status=0"), "{server_ok}");
    assert!(server_ok.contains("latency_us="), "{server_ok}");
}
