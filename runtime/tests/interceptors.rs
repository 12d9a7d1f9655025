//! Client and server interceptors: adding metadata, rejecting calls,
//! changing the timeout, running in order.

mod common;

use std::time::Duration;

use common::*;
use courier::client::{ClientInterceptor, OutgoingRequest};
use courier::server::ServerInterceptor;
use courier::{BoxFuture, CallContext, NoDeclaredError, RpcError, Status, StatusCode};

/// Adds `authorization: Bearer TOKEN` to every call.
struct AddToken(&'static str);

impl ClientInterceptor for AddToken {
    fn intercept<'a>(
        &'a self,
        request: &'a mut OutgoingRequest,
    ) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(async move {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {}", self.0));
            Ok(())
        })
    }
}

/// Appends its number to `order`.
struct Mark(&'static str);

impl ClientInterceptor for Mark {
    fn intercept<'a>(
        &'a self,
        request: &'a mut OutgoingRequest,
    ) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            request.metadata_mut().insert("order", self.0);
            Ok(())
        })
    }
}

/// Refuses `slow` locally; shortens the timeout of `gated`.
struct Policy;

impl ClientInterceptor for Policy {
    fn intercept<'a>(
        &'a self,
        request: &'a mut OutgoingRequest,
    ) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(async move {
            match request.method().method {
                "slow" => Err(Status::new(
                    StatusCode::PermissionDenied,
                    "slow calls are not allowed here",
                )),
                "gated" => {
                    request.set_timeout(Some(Duration::from_millis(30)));
                    Ok(())
                }
                _ => Ok(()),
            }
        })
    }
}

/// Requires the token; tells the handler who called.
struct RequireToken;

impl ServerInterceptor for RequireToken {
    fn intercept<'a>(&'a self, call: &'a mut CallContext) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(async move {
            match call.metadata().get("authorization") {
                Some("Bearer secret") => {
                    let who = format!("alice via {}/{}", call.service(), call.method());
                    call.metadata_mut().insert("user", who);
                    Ok(())
                }
                _ => Err(Status::new(
                    StatusCode::Unauthenticated,
                    "missing or bad token",
                )),
            }
        })
    }
}

/// Misuses status 0 to reject.
struct RejectWithOk;

impl ServerInterceptor for RejectWithOk {
    fn intercept<'a>(&'a self, _: &'a mut CallContext) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(async { Err(Status::new(StatusCode::Ok, "not a real rejection")) })
    }
}

async fn echoed_metadata(channel: &courier::client::Channel) -> Result<Vec<String>, RpcError> {
    channel
        .unary::<_, MetadataReply, NoDeclaredError>(&ECHO_METADATA, &Empty {}, &options())
        .await
        .map(|reply| reply.value)
}

#[tokio::test]
async fn a_token_added_by_the_client_is_checked_by_the_server() {
    let server = TestServer::start_with(|builder| builder.add_interceptor(RequireToken)).await;
    let channel = server.channel().await.with_interceptor(AddToken("secret"));
    assert_eq!(
        echoed_metadata(&channel).await.expect("allowed"),
        [
            "authorization",
            "Bearer secret",
            "user",
            "alice via test.Echo/echo_metadata"
        ]
    );
    // Without the interceptor (a clone made before it was added), or with
    // a bad token, the call is rejected and the handler never runs.
    let bare = server.channel().await;
    let result = echoed_metadata(&bare).await;
    assert_eq!(code(&result), StatusCode::Unauthenticated);
    assert!(
        result
            .unwrap_err()
            .to_string()
            .contains("missing or bad token")
    );
    let wrong = server.channel().await.with_interceptor(AddToken("guess"));
    let result: Result<EchoReply, RpcError> = wrong.unary(&GATED, &args(""), &options()).await;
    assert_eq!(code(&result), StatusCode::Unauthenticated);
    assert_eq!(server.observed.started(), 0);
}

#[tokio::test]
async fn client_interceptors_run_in_order() {
    let server = TestServer::start().await;
    let channel = server
        .channel()
        .await
        .with_interceptor(Mark("1"))
        .with_interceptor(Mark("2"));
    assert_eq!(
        echoed_metadata(&channel).await.expect("echo"),
        ["order", "1", "order", "2"]
    );
}

#[tokio::test]
async fn a_client_interceptor_can_refuse_a_call_before_it_is_sent() {
    let server = TestServer::start().await;
    let channel = server.channel().await.with_interceptor(Policy);
    let result: Result<EchoReply, RpcError> = channel.unary(&SLOW, &args(""), &options()).await;
    assert_eq!(code(&result), StatusCode::PermissionDenied);
    assert_eq!(server.observed.started(), 0, "nothing was sent");
    assert_eq!(channel.pending_len(), 0);
    // Other calls go through.
    let reply: EchoReply = channel
        .unary::<_, _, NoDeclaredError>(&ECHO, &args("fine"), &options())
        .await
        .expect("echo");
    assert_eq!(reply.value, "fine");
}

#[tokio::test]
async fn a_client_interceptor_can_set_the_timeout() {
    let server = TestServer::start().await;
    let channel = server.channel().await.with_interceptor(Policy);
    let result: Result<EchoReply, RpcError> = channel.unary(&GATED, &args(""), &options()).await;
    assert_eq!(code(&result), StatusCode::DeadlineExceeded);
    eventually("the server to be idle", || server.handle.in_flight() == 0).await;
}

#[tokio::test]
async fn a_server_interceptor_cannot_answer_ok() {
    let server = TestServer::start_with(|builder| builder.add_interceptor(RejectWithOk)).await;
    let channel = server.channel().await;
    let result = echoed_metadata(&channel).await;
    assert_eq!(code(&result), StatusCode::Internal);
}

#[tokio::test]
async fn a_rejected_oneway_call_never_runs() {
    let server = TestServer::start_with(|builder| builder.add_interceptor(RequireToken)).await;
    let bare = server.channel().await;
    bare.oneway(&NOTIFY, &args("refused"), &options())
        .await
        .expect("written");
    let allowed = server.channel().await.with_interceptor(AddToken("secret"));
    allowed
        .oneway(&NOTIFY, &args("accepted"), &options())
        .await
        .expect("written");
    let observed = &server.observed;
    eventually("the allowed note", || !observed.notes().is_empty()).await;
    // The refused one was sent first, on its own connection; give the
    // server a round trip on it before looking.
    let _ = echoed_metadata(&bare).await;
    assert_eq!(observed.notes(), ["accepted"]);
}
