//! A balanced channel that fails a call over resends the frame it sent
//! first: the same request id and payload, encoded once (its timeout field
//! set to the time the caller has left). Observed on
//! two real peers (raw sockets that record every request frame they read),
//! with a serializer that counts its encodes.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use common::*;
use courier::client::{BalanceOptions, CallOptions, Channel, MethodDescriptor};
use courier::protocol::{FrameHeader, HEADER_LEN, MessageKind};
use courier::registry::{MemoryRegistry, Registry, ServiceInstance};
use courier::serializer::{CodecError, DecodeSink, PayloadCodec, erased_serde};
use courier::{NoDeclaredError, RpcError, Serializer, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// JSON, counting every message it encodes.
struct CountingJson {
    encodes: AtomicUsize,
}

impl PayloadCodec for CountingJson {
    fn id(&self) -> u8 {
        210
    }

    fn name(&self) -> &'static str {
        "counting-json"
    }

    fn encode(
        &self,
        message: &dyn erased_serde::Serialize,
        buf: &mut BytesMut,
    ) -> Result<(), CodecError> {
        self.encodes.fetch_add(1, Ordering::SeqCst);
        let mut serializer = serde_json::Serializer::new(buf.writer());
        message.erased_serialize(&mut <dyn erased_serde::Serializer>::erase(&mut serializer))?;
        Ok(())
    }

    fn decode(&self, payload: &[u8], sink: &mut DecodeSink<'_>) -> Result<(), CodecError> {
        let mut deserializer = serde_json::Deserializer::from_slice(payload);
        sink.deserialize(&mut <dyn erased_serde::Deserializer>::erase(
            &mut deserializer,
        ))?;
        Ok(())
    }
}

static COUNTING: CountingJson = CountingJson {
    encodes: AtomicUsize::new(0),
};

/// Every request frame a peer read, whole.
type Frames = Arc<Mutex<Vec<Vec<u8>>>>;

/// A peer on a real socket that records each request frame and answers it
/// with `status` (and `body`), `delay` after reading it.
async fn peer(
    status: StatusCode,
    body: &'static [u8],
    delay: Duration,
) -> (std::net::SocketAddr, Frames) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let frames = Frames::default();
    let recorded = Arc::clone(&frames);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let recorded = Arc::clone(&recorded);
            tokio::spawn(async move {
                loop {
                    let mut header = [0u8; 18];
                    if stream.read_exact(&mut header).await.is_err() {
                        return;
                    }
                    let len = u32::from_be_bytes(header[14..18].try_into().expect("4 bytes"));
                    let mut frame = header.to_vec();
                    frame.resize(18 + len as usize, 0);
                    if stream.read_exact(&mut frame[18..]).await.is_err() {
                        return;
                    }
                    if header[4] != 1 {
                        continue; // not a request (byte 4 is the kind: a ping, a cancel)
                    }
                    recorded.lock().expect("lock").push(frame);
                    tokio::time::sleep(delay).await;
                    let mut answer = BytesMut::new();
                    FrameHeader {
                        serializer: header[3],
                        kind: MessageKind::Response,
                        status: status.as_u8(),
                        request_id: u64::from_be_bytes(header[6..14].try_into().expect("8")),
                        body_len: body.len() as u32,
                    }
                    .encode_into(&mut answer);
                    answer.extend_from_slice(body);
                    if stream.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, frames)
}

/// How long the busy peer takes to refuse a call.
const BUSY_FOR: Duration = Duration::from_millis(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_resends_the_frame_without_encoding_again_with_the_time_left() {
    let counting = Serializer::custom(&COUNTING).expect("a free id");
    // Status 19: safe to retry elsewhere, whatever the method.
    // The busy peer answers after 20 ms: a retry's timeout is that much
    // shorter than the first attempt's.
    let (busy, busy_frames) = peer(StatusCode::Unavailable, b"busy", BUSY_FOR).await;
    let (ok, ok_frames) = peer(StatusCode::Ok, br#"{"value":"done"}"#, Duration::ZERO).await;
    let registry = MemoryRegistry::new();
    for addr in [busy, ok] {
        registry
            .register(ServiceInstance::new(SERVICE, addr))
            .await
            .expect("registered");
    }
    let options = BalanceOptions {
        // Keep the busy peer in rotation, and never run out of retries.
        eject_after: 0,
        retry_ratio: 1.0,
        ..BalanceOptions::default()
    };
    let registry: Arc<dyn Registry> = Arc::new(registry);
    let channel = Channel::balanced(registry, SERVICE, options)
        .await
        .expect("balanced");
    let call_options = CallOptions {
        serializer: counting,
        timeout: Some(PATIENCE),
        ..CallOptions::default()
    };
    let method = MethodDescriptor::new(SERVICE, "echo");
    let mut retried = 0;
    // The busy peer is picked first in about half the calls.
    for call in 0..40 {
        let before = COUNTING.encodes.load(Ordering::SeqCst);
        let reply: Result<EchoReply, RpcError<NoDeclaredError>> = within(
            "a call",
            channel.unary(&method, &args(&format!("call {call}")), &call_options),
        )
        .await;
        assert_eq!(reply.expect("answered by the ok peer").value, "done");
        assert_eq!(
            COUNTING.encodes.load(Ordering::SeqCst) - before,
            1,
            "the args were encoded once per call, retries included"
        );
        let busy_seen = busy_frames.lock().expect("lock").clone();
        let ok_seen = ok_frames.lock().expect("lock").clone();
        assert_eq!(ok_seen.len(), call + 1, "every call ends on the ok peer");
        if busy_seen.len() > retried {
            retried += 1;
            let first = busy_seen.last().expect("a frame");
            let resent = ok_seen.last().expect("a frame");
            assert_eq!(first[6..14], resent[6..14], "the same request id");
            // The same bytes but for the timeout field, which carries the
            // time the caller has left: no more than the first attempt's.
            let at = HEADER_LEN + 2 + SERVICE.len() + 2 + "echo".len();
            let timeout =
                |frame: &[u8]| u32::from_be_bytes(frame[at..at + 4].try_into().expect("4 bytes"));
            let spent = BUSY_FOR.as_millis() as u32;
            assert!(
                (1..=timeout(first) - spent).contains(&timeout(resent)),
                "the retry's timeout {} ms, the first's {} ms",
                timeout(resent),
                timeout(first)
            );
            assert_eq!(first[..at], resent[..at], "the same header and names");
            assert_eq!(
                first[at + 4..],
                resent[at + 4..],
                "the same metadata and payload"
            );
        }
        if retried >= 3 {
            break;
        }
    }
    assert!(retried >= 1, "no call was picked onto the busy peer first");
    // Each call drew its own id: no two calls share one.
    let ok_seen = ok_frames.lock().expect("lock").clone();
    let mut ids: Vec<&[u8]> = ok_seen.iter().map(|frame| &frame[6..14]).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), ok_seen.len());
}
