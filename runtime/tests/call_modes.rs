//! The four call modes: await, sync (`call_blocking`), future
//! (`spawn_call` → `PendingCall`) and callback (`spawn_call_with_callback`),
//! each with a reply, a declared error, a timeout and a server failure, and
//! every status a handler answers with `Status`'s constructors.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use courier::client::{CallOptions, Channel};
use courier::{NoDeclaredError, RpcError, StatusCode, TransportError};

/// The outcome of one call, reduced to what the tests compare.
#[derive(Debug, PartialEq)]
enum Outcome {
    Reply(String),
    Declared(String),
    Status(StatusCode),
    Transport(String),
}

fn outcome<E: std::fmt::Debug>(result: Result<EchoReply, RpcError<E>>) -> Outcome {
    match result {
        Ok(reply) => Outcome::Reply(reply.value),
        Err(RpcError::Declared(e)) => Outcome::Declared(format!("{e:?}")),
        Err(RpcError::Status(s)) => Outcome::Status(s.code()),
        Err(RpcError::Transport(t)) => Outcome::Transport(t.to_string()),
    }
}

/// One case: the method, its args and options, and what must come back.
type Case = (
    &'static courier::client::MethodDescriptor<'static>,
    EchoArgs,
    CallOptions,
    fn(&Outcome) -> bool,
);

/// The four cases every mode must carry: a reply, a declared error, a
/// timeout, a failure on the server.
fn cases() -> Vec<Case> {
    vec![
        (&ECHO, args("hi"), options(), |o| {
            *o == Outcome::Reply("hi".into())
        }),
        (
            &FAIL_DECLARED,
            args("k"),
            options(),
            |o| matches!(o, Outcome::Declared(text) if text.contains("\"k\"")),
        ),
        (
            &SLOW,
            args(""),
            with_timeout(Duration::from_millis(50)),
            |o| *o == Outcome::Status(StatusCode::DeadlineExceeded),
        ),
        (&PANIC, args("panic"), options(), |o| {
            *o == Outcome::Status(StatusCode::Internal)
        }),
    ]
}

/// A call as a generated stub makes it: a future that owns what it needs.
fn call(
    channel: &Channel,
    method: &'static courier::client::MethodDescriptor<'static>,
    args: EchoArgs,
    options: CallOptions,
) -> impl Future<Output = Result<EchoReply, RpcError<EchoError>>> + Send + 'static {
    let channel = channel.clone();
    async move { channel.unary(method, &args, &options).await }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn await_mode_carries_every_outcome() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    for (method, args, options, expected) in cases() {
        let got = outcome(call(&channel, method, args, options).await);
        assert!(expected(&got), "{}: {got:?}", method.method);
    }
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
}

#[test]
fn sync_mode_from_a_plain_thread_carries_every_outcome() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (server, channel) = runtime.block_on(async {
        let server = TestServer::start().await;
        let channel = server.channel().await;
        (server, channel)
    });
    let thread = std::thread::spawn(move || {
        let mut calls = 0;
        for (method, args, options, expected) in cases() {
            let got = outcome(channel.call_blocking(call(&channel, method, args, options)));
            assert!(expected(&got), "{}: {got:?}", method.method);
            calls += 1;
        }
        (calls, channel)
    });
    let (calls, channel) = thread.join().expect("the plain thread");
    assert_eq!(calls, 4);
    runtime.block_on(async {
        eventually("the pending map to empty", || channel.pending_len() == 0).await;
        eventually("the server to be idle", || server.handle.in_flight() == 0).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_on_a_runtime_thread_is_a_clear_error_not_a_deadlock() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let result = channel.call_blocking(call(&channel, &ECHO, args("x"), options()));
    assert!(
        matches!(
            result,
            Err(RpcError::Transport(TransportError::BlockingInAsyncContext))
        ),
        "{result:?}"
    );
    // Nothing was sent.
    assert_eq!(channel.pending_len(), 0);
    assert_eq!(server.handle.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_inside_spawn_blocking_carries_every_outcome() {
    // tokio lets spawn_blocking's threads block: so does call_blocking.
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let calls = tokio::task::spawn_blocking({
        let channel = channel.clone();
        move || {
            let mut calls = 0;
            for (method, args, options, expected) in cases() {
                let got = outcome(channel.call_blocking(call(&channel, method, args, options)));
                assert!(expected(&got), "{}: {got:?}", method.method);
                calls += 1;
            }
            calls
        }
    });
    assert_eq!(
        within("the blocking calls", calls).await.expect("no panic"),
        4
    );
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
}

#[tokio::test]
async fn sync_mode_inside_spawn_blocking_of_a_current_thread_runtime() {
    // The runtime's only thread keeps driving the connection while it
    // awaits the blocking task.
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let got = tokio::task::spawn_blocking({
        let channel = channel.clone();
        move || outcome(channel.call_blocking(call(&channel, &ECHO, args("hi"), options())))
    });
    assert_eq!(
        within("the blocking call", got).await.expect("no panic"),
        Outcome::Reply("hi".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_on_a_worker_thread_is_a_clear_error() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let result = tokio::spawn({
        let channel = channel.clone();
        async move { channel.call_blocking(call(&channel, &ECHO, args("x"), options())) }
    })
    .await
    .expect("no panic");
    assert!(
        matches!(
            result,
            Err(RpcError::Transport(TransportError::BlockingInAsyncContext))
        ),
        "{result:?}"
    );
    assert_eq!(channel.pending_len(), 0);
    assert_eq!(server.handle.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_mode_carries_every_outcome() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let pending: Vec<_> = cases()
        .into_iter()
        .map(|(method, args, options, expected)| {
            (
                method,
                channel.spawn_call(call(&channel, method, args, options)),
                expected,
            )
        })
        .collect();
    for (method, pending, expected) in pending {
        let got = outcome(within("a spawned call", pending).await);
        assert!(expected(&got), "{}: {got:?}", method.method);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_call_can_be_polled_for_completion() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let pending = channel.spawn_call(call(&channel, &GATED, args("later"), options()));
    let observed = &server.observed;
    eventually("the handler to start", || observed.started() == 1).await;
    assert!(!pending.is_done());
    observed.open_gate();
    eventually("the call to finish", || pending.is_done()).await;
    assert_eq!(outcome(pending.await), Outcome::Reply("later".into()));
}

#[test]
fn a_pending_call_can_be_waited_for_from_a_plain_thread() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (_server, channel) = runtime.block_on(async {
        let server = TestServer::start().await;
        let channel = server.channel().await;
        (server, channel)
    });
    let pending = channel.spawn_call(call(&channel, &ECHO, delayed("waited", 20), options()));
    let got = std::thread::spawn(move || outcome(pending.wait()))
        .join()
        .expect("the plain thread");
    assert_eq!(got, Outcome::Reply("waited".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_call_can_be_waited_for_inside_spawn_blocking() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let pending = channel.spawn_call(call(&channel, &ECHO, delayed("waited", 20), options()));
    let got = tokio::task::spawn_blocking(move || outcome(pending.wait()));
    assert_eq!(
        within("the wait", got).await.expect("no panic"),
        Outcome::Reply("waited".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_on_a_runtime_thread_is_a_clear_error() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let pending = channel.spawn_call(call(&channel, &ECHO, args("x"), options()));
    assert!(matches!(
        pending.wait(),
        Err(RpcError::Transport(TransportError::BlockingInAsyncContext))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_pending_call_cancels_it() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let pending = channel.spawn_call(call(&channel, &SLOW, args(""), options()));
    let observed = &server.observed;
    eventually("the handler to start", || observed.started() == 1).await;
    assert_eq!(channel.pending_len(), 1);
    drop(pending);
    eventually("the pending map to empty", || channel.pending_len() == 0).await;
    eventually("the handler to be stopped by the cancel", || {
        observed.stopped() == 1
    })
    .await;
    eventually("the server slot to be freed", || {
        server.handle.in_flight() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_spawned_call_is_an_error_not_a_panic() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let pending = channel.spawn_call(async {
        tokio::task::yield_now().await;
        panic!("the call panicked on purpose");
        #[allow(unreachable_code)]
        Ok::<EchoReply, RpcError>(EchoReply::default())
    });
    match pending.await {
        Err(RpcError::Transport(TransportError::CallPanicked(message))) => {
            assert_eq!(message, "the call panicked on purpose")
        }
        other => panic!("expected CallPanicked, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_mode_runs_once_with_every_outcome() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let (tx, rx) = mpsc::channel();
    let expected: Vec<_> = cases()
        .into_iter()
        .enumerate()
        .map(|(i, (method, args, options, expected))| {
            let tx = tx.clone();
            channel.spawn_call_with_callback(
                call(&channel, method, args, options),
                move |result| {
                    tx.send((i, outcome(result))).expect("the test listens");
                },
            );
            (method, expected)
        })
        .collect();
    drop(tx);
    let mut got: Vec<(usize, Outcome)> = tokio::task::spawn_blocking(move || rx.iter().collect())
        .await
        .expect("collecting");
    got.sort_by_key(|(i, _)| *i);
    assert_eq!(got.len(), expected.len(), "each callback ran exactly once");
    for ((method, expected), (_, got)) in expected.iter().zip(&got) {
        assert!(expected(got), "{}: {got:?}", method.method);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_hears_of_a_connection_failure() {
    use courier_test_support::fault_proxy::{Fault, FaultProxy};
    let server = TestServer::start().await;
    let proxy = FaultProxy::start(server.addr()).expect("a proxy");
    let channel = Channel::connect(proxy.addr()).await.expect("connect");
    let (tx, rx) = tokio::sync::oneshot::channel();
    channel.spawn_call_with_callback(call(&channel, &SLOW, args(""), options()), move |result| {
        let _ = tx.send(outcome(result));
    });
    let observed = std::sync::Arc::clone(&server.observed);
    eventually("the call to start", || observed.started() == 1).await;
    // The connection is reset under the call.
    proxy.set(Fault::Reset);
    match within("the callback", rx).await.expect("called") {
        Outcome::Transport(message) => assert!(message.contains("connection lost"), "{message}"),
        other => panic!("expected a transport error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_hears_of_a_panic() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    channel.spawn_call_with_callback(
        async {
            panic!("boom");
            #[allow(unreachable_code)]
            Ok::<EchoReply, RpcError>(EchoReply::default())
        },
        move |result| {
            let _ = tx.send(outcome(result));
        },
    );
    assert_eq!(
        within("the callback", rx).await.expect("called"),
        Outcome::Transport(TransportError::CallPanicked("boom".into()).to_string())
    );
}

#[test]
fn a_callback_runs_even_when_the_runtime_stops_first() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (tx, rx) = mpsc::channel();
    let server = runtime.block_on(async {
        let server = TestServer::start().await;
        let channel = server.channel().await;
        channel.spawn_call_with_callback(
            call(&channel, &SLOW, args(""), options()),
            move |result| {
                tx.send(outcome(result)).expect("the test listens");
            },
        );
        let observed = &server.observed;
        eventually("the call to start", || observed.started() == 1).await;
        server
    });
    drop(server);
    drop(runtime);
    let got: Vec<Outcome> = rx.iter().collect();
    assert_eq!(
        got,
        [Outcome::Transport(TransportError::CallAborted.to_string())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn await_mode_with_no_declared_error_type() {
    // The stub of a method without `throws` uses `NoDeclaredError`.
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let pending = channel.spawn_call({
        let channel = channel.clone();
        async move {
            channel
                .unary::<_, EchoReply, NoDeclaredError>(&ECHO, &args("plain"), &options())
                .await
        }
    });
    assert_eq!(pending.await.expect("echo").value, "plain");
}

/// What every mode reports for a call whose timeout passed: the client's
/// own message, never the server's status 6 text, which races with it (the
/// server's deadline is the call's own timeout, sent with the request).
#[test]
fn a_timeout_has_one_message_in_every_mode() {
    const CALLS: usize = 12;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (server, channel) = runtime.block_on(async {
        let server = TestServer::start().await;
        let channel = server.channel().await;
        (server, channel)
    });
    let timed_out = || {
        call(
            &channel,
            &SLOW,
            args(""),
            with_timeout(Duration::from_millis(30)),
        )
    };
    let message = |result: Result<EchoReply, RpcError<EchoError>>| match result {
        Err(RpcError::Status(status)) if status.code() == StatusCode::DeadlineExceeded => {
            status.message().to_owned()
        }
        other => panic!("expected status 6, got {other:?}"),
    };
    let mut messages = Vec::new();
    // async
    messages.extend(runtime.block_on(async {
        let calls: Vec<_> = (0..CALLS).map(|_| timed_out()).collect();
        let mut got = Vec::new();
        for call in calls {
            got.push(message(call.await));
        }
        got
    }));
    // sync, from plain threads at once
    let threads: Vec<_> = (0..CALLS)
        .map(|_| {
            let (channel, call) = (channel.clone(), timed_out());
            std::thread::spawn(move || message(channel.call_blocking(call)))
        })
        .collect();
    messages.extend(threads.into_iter().map(|t| t.join().expect("a thread")));
    // future
    let pending: Vec<_> = (0..CALLS)
        .map(|_| channel.spawn_call(timed_out()))
        .collect();
    messages.extend(pending.into_iter().map(|p| message(p.wait())));
    // callback
    let (tx, rx) = mpsc::channel();
    for _ in 0..CALLS {
        let tx = tx.clone();
        channel.spawn_call_with_callback(timed_out(), move |result| {
            tx.send(message(result)).expect("the test listens");
        });
    }
    drop(tx);
    messages.extend(rx.iter());

    assert_eq!(messages.len(), 4 * CALLS);
    for got in &messages {
        assert_eq!(got, "no answer from test.Echo/slow within 30ms");
    }
    runtime.block_on(async {
        eventually("the pending map to empty", || channel.pending_len() == 0).await;
        eventually("the server to be idle", || server.handle.in_flight() == 0).await;
    });
}

/// A refused call's status: its code and message (anything else is an
/// `Err` that says what came instead).
fn status_of(
    result: Result<EchoReply, RpcError<EchoError>>,
) -> Result<(StatusCode, String), String> {
    match result {
        Err(RpcError::Status(status)) => Ok((status.code(), status.message().to_owned())),
        other => Err(format!("expected a status, got {other:?}")),
    }
}

/// Every status a handler answers with `Status`'s constructors (12-21)
/// comes back to the caller with exactly its code and message, in every
/// mode; blocking calls and waits from a plain thread.
#[test]
fn a_handlers_status_comes_back_exactly_in_every_mode() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (server, channel) = runtime.block_on(async {
        let server = TestServer::start().await;
        let channel = server.channel().await;
        (server, channel)
    });
    // Bounded: a call that never ends fails the test with status 6.
    let refuse = |byte: u8| call(&channel, &REFUSE, refused(byte), with_timeout(PATIENCE));
    let expected: Vec<_> = HANDLER_STATUSES
        .iter()
        .map(|&(byte, code)| Ok((code, refusal(byte))))
        .collect();
    // async
    let awaited = runtime.block_on(async {
        let mut got = Vec::new();
        for (byte, _) in HANDLER_STATUSES {
            got.push(status_of(refuse(byte).await));
        }
        got
    });
    assert_eq!(awaited, expected, "async");
    // sync, from a plain thread
    let calls: Vec<_> = HANDLER_STATUSES
        .iter()
        .map(|&(byte, _)| refuse(byte))
        .collect();
    let blocking = std::thread::spawn({
        let channel = channel.clone();
        move || {
            calls
                .into_iter()
                .map(|call| status_of(channel.call_blocking(call)))
                .collect::<Vec<_>>()
        }
    })
    .join()
    .expect("the plain thread");
    assert_eq!(blocking, expected, "blocking");
    // future, waited for from a plain thread
    let pending: Vec<_> = HANDLER_STATUSES
        .iter()
        .map(|&(byte, _)| channel.spawn_call(refuse(byte)))
        .collect();
    let waited = std::thread::spawn(move || {
        pending
            .into_iter()
            .map(|pending| status_of(pending.wait()))
            .collect::<Vec<_>>()
    })
    .join()
    .expect("the plain thread");
    assert_eq!(waited, expected, "future");
    // callback
    let (tx, rx) = mpsc::channel();
    for (i, &(byte, _)) in HANDLER_STATUSES.iter().enumerate() {
        let tx = tx.clone();
        channel.spawn_call_with_callback(refuse(byte), move |result| {
            tx.send((i, status_of(result))).expect("the test listens");
        });
    }
    drop(tx);
    let mut called: Vec<_> = (0..HANDLER_STATUSES.len())
        .map(|_| {
            rx.recv_timeout(PATIENCE)
                .expect("a callback within PATIENCE")
        })
        .collect();
    called.sort_by_key(|(i, _)| *i);
    let called: Vec<_> = called.into_iter().map(|(_, got)| got).collect();
    assert_eq!(called, expected, "callback");
    runtime.block_on(async {
        eventually("the pending map to empty", || channel.pending_len() == 0).await;
        eventually("the server to be idle", || server.handle.in_flight() == 0).await;
    });
}
