//! Bearer-token authentication and per-method authorization
//! (`courier::auth`), and the server's serializer allow-list, over real
//! sockets. Tokens must never show in statuses, `Debug` output or logs.

mod captured_log;
mod common;

use captured_log::CapturedLog;
use common::*;
use courier::auth::{BearerToken, BearerTokenAuth};
use courier::client::{CallOptions, Channel, MethodDescriptor};
use courier::server::{IncomingCall, Server, ServerHandle, ServiceHandler};
use courier::{CallContext, Metadata, NoDeclaredError, RpcError, Serializer, StatusCode};

const ALICE_TOKEN: &str = "alice-7f3a9c1e55d2";
const OPS_TOKEN: &str = "ops-0b41e6d2c9aa";
const WRONG_TOKEN: &str = "mallory-deadbeef99";
const GUARDED: &str = "test.Guarded";

/// A service that answers who called it.
struct Guarded;

impl ServiceHandler for Guarded {
    fn wire_name(&self) -> &'static str {
        GUARDED
    }

    fn dispatch(&self, call: IncomingCall) {
        match call.method() {
            // Answers the principal and whether the token reached the handler.
            "whoami" | "admin" | "health" => {
                call.serve_unary(|ctx: CallContext, _args: EchoArgs| async move {
                    let value = format!(
                        "{} token_seen={}",
                        ctx.principal().unwrap_or("anonymous"),
                        ctx.metadata().get("authorization").is_some()
                    );
                    Ok::<_, RpcError>(EchoReply { value })
                })
            }
            _ => call.reject_unknown_method(),
        }
    }
}

macro_rules! guarded {
    ($name:ident, $wire:literal) => {
        static $name: MethodDescriptor = MethodDescriptor {
            service: GUARDED,
            method: $wire,
            idempotent: false,
            default_timeout: None,
        };
    };
}

guarded!(WHOAMI_GUARDED, "whoami");
guarded!(ADMIN, "admin");
guarded!(HEALTH, "health");

fn auth() -> BearerTokenAuth {
    BearerTokenAuth::new()
        .with_token("alice", ALICE_TOKEN)
        .and_then(|auth| auth.with_token("ops", OPS_TOKEN))
        .expect("valid tokens")
        .restrict_method(GUARDED, "admin", ["ops"])
        .allow_anonymous(GUARDED, "health")
}

async fn start() -> ServerHandle {
    Server::builder()
        .add_service(Guarded)
        .add_interceptor(auth())
        .bind("127.0.0.1:0")
        .await
        .expect("bind")
}

async fn channel(server: &ServerHandle, token: Option<&str>) -> Channel {
    let channel = Channel::connect(server.local_addr())
        .await
        .expect("connect");
    match token {
        Some(token) => channel.with_interceptor(BearerToken::new(token).expect("valid")),
        None => channel,
    }
}

async fn call(
    channel: &Channel,
    method: &'static MethodDescriptor<'static>,
) -> Result<String, RpcError<NoDeclaredError>> {
    within(
        "a call",
        channel.unary::<_, EchoReply, NoDeclaredError>(method, &args(""), &options()),
    )
    .await
    .map(|reply| reply.value)
}

#[tokio::test]
async fn a_known_token_authenticates_and_its_principal_reaches_the_handler() {
    let server = start().await;
    let alice = channel(&server, Some(ALICE_TOKEN)).await;
    assert_eq!(
        call(&alice, &WHOAMI_GUARDED)
            .await
            .expect("alice may call whoami"),
        "alice token_seen=false",
        "the principal is recorded and the token removed from the metadata"
    );
    let ops = channel(&server, Some(OPS_TOKEN)).await;
    assert_eq!(
        call(&ops, &ADMIN).await.expect("ops may call admin"),
        "ops token_seen=false"
    );
}

#[tokio::test]
async fn a_missing_or_unknown_token_is_answered_status_12_without_echoing_it() {
    let server = start().await;
    let anonymous = channel(&server, None).await;
    let missing = call(&anonymous, &WHOAMI_GUARDED).await;
    assert_eq!(code(&missing), StatusCode::Unauthenticated);

    let wrong = channel(&server, Some(WRONG_TOKEN)).await;
    let result = call(&wrong, &WHOAMI_GUARDED).await;
    assert_eq!(code(&result), StatusCode::Unauthenticated);
    let error = result.expect_err("refused");
    assert!(!error.to_string().contains(WRONG_TOKEN), "{error}");
    assert!(!format!("{error:?}").contains(WRONG_TOKEN), "{error:?}");

    // A token of another scheme is refused too.
    let mut metadata = Metadata::new();
    metadata.insert("authorization", format!("Basic {ALICE_TOKEN}"));
    let options = CallOptions {
        metadata,
        ..CallOptions::default()
    };
    let basic = anonymous
        .unary::<_, EchoReply, NoDeclaredError>(&WHOAMI_GUARDED, &args(""), &options)
        .await;
    assert_eq!(code(&basic), StatusCode::Unauthenticated);
}

#[tokio::test]
async fn a_principal_not_on_a_methods_allow_list_is_answered_status_13() {
    let server = start().await;
    let alice = channel(&server, Some(ALICE_TOKEN)).await;
    let result = call(&alice, &ADMIN).await;
    assert_eq!(code(&result), StatusCode::PermissionDenied);
    let message = result.expect_err("denied").to_string();
    assert!(
        message.contains("alice") && message.contains("admin"),
        "{message}"
    );
    // The same connection still serves what alice may call.
    assert_eq!(
        call(&alice, &WHOAMI_GUARDED).await.expect("whoami"),
        "alice token_seen=false"
    );
}

#[tokio::test]
async fn an_anonymous_method_needs_no_token() {
    let server = start().await;
    let anonymous = channel(&server, None).await;
    assert_eq!(
        call(&anonymous, &HEALTH).await.expect("health"),
        "anonymous token_seen=false"
    );
    let alice = channel(&server, Some(ALICE_TOKEN)).await;
    assert_eq!(
        call(&alice, &HEALTH).await.expect("health"),
        "alice token_seen=false"
    );
}

#[test]
fn tokens_never_show_in_debug_output() {
    let token = BearerToken::new(ALICE_TOKEN).expect("valid");
    let auth = auth();
    let mut metadata = Metadata::new();
    metadata.insert("authorization", format!("Bearer {ALICE_TOKEN}"));
    for shown in [
        format!("{token:?}"),
        format!("{auth:?}"),
        format!("{metadata:?}"),
        format!(
            "{:?}",
            CallContext::new(None, metadata.clone(), "127.0.0.1:1".parse().expect("addr"))
        ),
    ] {
        assert!(!shown.contains(ALICE_TOKEN), "{shown}");
        assert!(!shown.contains(OPS_TOKEN), "{shown}");
    }
    assert!(
        format!("{auth:?}").contains("alice"),
        "principals are shown"
    );
}

#[test]
fn tokens_never_show_in_logs_at_any_level() {
    let captured = CapturedLog::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
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
            let server = start().await;
            for token in [ALICE_TOKEN, OPS_TOKEN, WRONG_TOKEN] {
                let channel = channel(&server, Some(token)).await;
                let _ = call(&channel, &WHOAMI_GUARDED).await;
                let _ = call(&channel, &ADMIN).await;
            }
            server.shutdown().await;
        });
    });
    let logs = captured.text();
    assert!(logs.contains("courier"), "something was logged: {logs}");
    for token in [ALICE_TOKEN, OPS_TOKEN, WRONG_TOKEN] {
        assert!(!logs.contains(token), "{token} logged:\n{logs}");
    }
}

#[tokio::test]
async fn a_serializer_off_the_allow_list_is_answered_status_5_never_served_in_another() {
    let server = TestServer::start_with(|builder| {
        builder.allow_only_serializers([Serializer::Protobuf, Serializer::Postcard])
    })
    .await;
    let channel = server.channel().await;
    let in_format = |serializer| CallOptions {
        serializer,
        ..CallOptions::default()
    };
    for allowed in [Serializer::Protobuf, Serializer::Postcard] {
        let reply: EchoReply = channel
            .unary::<_, _, NoDeclaredError>(&ECHO, &args("ok"), &in_format(allowed))
            .await
            .expect("an allowed serializer");
        assert_eq!(reply.value, "ok");
    }
    for refused in [Serializer::Json, Serializer::MessagePack] {
        let result: Result<EchoReply, RpcError> =
            channel.unary(&ECHO, &args("no"), &in_format(refused)).await;
        assert_eq!(code(&result), StatusCode::UnsupportedSerializer);
        let message = result.expect_err("refused").to_string();
        assert!(message.contains("disabled"), "{message}");
    }
    // Not a protocol error: the connection goes on.
    let reply: EchoReply = channel
        .unary::<_, _, NoDeclaredError>(&ECHO, &args("still"), &options())
        .await
        .expect("echo");
    assert_eq!(reply.value, "still");
}
