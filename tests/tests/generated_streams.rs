//! Generated server-streaming methods (`streams.rpc`), served and called
//! over real sockets: every item type, in every serializer, as a stream and
//! as a blocking iterator; a declared error after the items; the renamed
//! item sender; unary and one-way methods beside the streams.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use courier::client::{Channel, Stub};
use courier::server::{Server, ServerHandle};
use courier::{CallContext, RpcError, Serializer};
use courier_tests::fixtures::streams::streams::{
    CountError, EchoError, Streams, StreamsClient, StreamsServer,
};
use courier_tests::fixtures::streams::{Quote, Stream, TooMany};

/// Serves every method of `Streams` from its arguments alone.
#[derive(Default)]
struct Numbers {
    resets: AtomicU32,
    counts: AtomicU32,
}

impl Streams for Numbers {
    async fn count(
        &self,
        _ctx: CallContext,
        n: u32,
        interval_ms: u32,
        mut items: courier::server::ItemSender<u32>,
    ) -> Result<(), RpcError<CountError>> {
        self.counts.fetch_add(1, Ordering::SeqCst);
        for i in 1..=n.min(100) {
            items.send(i).await?;
            if interval_ms > 0 {
                tokio::time::sleep(Duration::from_millis(u64::from(interval_ms))).await;
            }
        }
        if n > 100 {
            return Err(TooMany { max: 100 }.into());
        }
        Ok(())
    }

    async fn watch(
        &self,
        _ctx: CallContext,
        symbol: String,
        mut items: courier::server::ItemSender<Quote>,
    ) -> Result<(), RpcError> {
        for price in [1.5, 2.25] {
            let symbol = symbol.clone();
            items.send(Quote { symbol, price }).await?;
        }
        Ok(())
    }

    async fn pages(
        &self,
        _ctx: CallContext,
        page_size: u32,
        mut items: courier::server::ItemSender<Vec<String>>,
    ) -> Result<(), RpcError> {
        let names: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).into();
        for page in names.chunks(page_size.max(1) as usize) {
            items.send(page.to_vec()).await?;
        }
        Ok(())
    }

    async fn tallies(
        &self,
        _ctx: CallContext,
        mut items: courier::server::ItemSender<HashMap<String, Vec<u64>>>,
    ) -> Result<(), RpcError> {
        items.send(HashMap::new()).await?;
        items
            .send(HashMap::from([("x".to_owned(), vec![1, 2])]))
            .await?;
        Ok(())
    }

    async fn chunks(
        &self,
        _ctx: CallContext,
        name: String,
        mut items: courier::server::ItemSender<Option<Bytes>>,
    ) -> Result<(), RpcError> {
        items.send(Some(Bytes::from(name))).await?;
        items.send(None).await?;
        items.send(Some(Bytes::new())).await?;
        Ok(())
    }

    async fn stream(
        &self,
        _ctx: CallContext,
        stream: Stream,
        mut items: courier::server::ItemSender<Stream>,
    ) -> Result<(), RpcError> {
        for i in 0..stream.stream {
            items.send(Stream { stream: i }).await?;
        }
        Ok(())
    }

    async fn echo(
        &self,
        _ctx: CallContext,
        items: Vec<String>,
        times: u32,
        mut item_sender: courier::server::ItemSender<String>,
    ) -> Result<(), RpcError<EchoError>> {
        for _ in 0..times {
            for item in &items {
                item_sender.send(item.clone()).await?;
            }
        }
        if times > 2 {
            return Err(TooMany { max: 2 }.into());
        }
        Ok(())
    }

    async fn r#type(
        &self,
        _ctx: CallContext,
        r#match: u32,
        mut items: courier::server::ItemSender<u32>,
    ) -> Result<(), RpcError> {
        items.send(r#match).await?;
        Ok(())
    }

    /// `count` calls times 1000, plus resets.
    async fn total(&self, _ctx: CallContext) -> Result<u32, RpcError> {
        Ok(self.counts.load(Ordering::SeqCst) * 1000 + self.resets.load(Ordering::SeqCst))
    }

    async fn reset(&self, _ctx: CallContext) {
        self.resets.fetch_add(1, Ordering::SeqCst);
    }
}

async fn start() -> (ServerHandle, Channel) {
    let server = Server::builder()
        .add_service(StreamsServer::new(Numbers::default()))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let channel = Channel::connect(server.local_addr())
        .await
        .expect("connect");
    (server, channel)
}

/// Every element of a stream: the items, then the error that ended it, if
/// any.
async fn collect<T, E>(
    mut stream: courier::client::ItemStream<T, E>,
) -> (Vec<T>, Option<RpcError<E>>)
where
    T: courier::codegen::Field,
    E: courier::codegen::DeclaredError,
{
    let mut items = Vec::new();
    while let Some(element) = stream.next().await {
        match element {
            Ok(item) => items.push(item),
            Err(error) => {
                assert!(
                    stream.next().await.is_none(),
                    "the error is the last element"
                );
                return (items, Some(error));
            }
        }
    }
    (items, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_item_type_in_every_serializer() {
    let (server, channel) = start().await;
    for serializer in Serializer::ALL {
        let client = StreamsClient::new(channel.clone()).with_serializer(serializer);

        // More items than the credit window, then the end.
        let (items, end) = collect(client.count(40, 0)).await;
        assert_eq!(items, (1..=40).collect::<Vec<u32>>(), "{serializer}");
        assert!(end.is_none(), "{serializer}: {end:?}");

        // A declared error arrives typed, after the items before it.
        let (items, end) = collect(client.count(101, 0)).await;
        assert_eq!(items, (1..=100).collect::<Vec<u32>>(), "{serializer}");
        match end {
            Some(RpcError::Declared(CountError::TooMany(TooMany { max: 100 }))) => {}
            other => panic!("{serializer}: expected TooMany, got {other:?}"),
        }

        let (quotes, end) = collect(client.watch("ACME")).await;
        assert!(end.is_none(), "{serializer}: {end:?}");
        let prices: Vec<(String, f64)> = quotes.into_iter().map(|q| (q.symbol, q.price)).collect();
        assert_eq!(
            prices,
            [("ACME".to_owned(), 1.5), ("ACME".to_owned(), 2.25)]
        );

        let (pages, _) = collect(client.pages(2)).await;
        assert_eq!(
            pages,
            [vec!["a", "b"], vec!["c", "d"], vec!["e"]],
            "{serializer}"
        );

        let (tallies, _) = collect(client.tallies()).await;
        assert_eq!(
            tallies,
            [
                HashMap::new(),
                HashMap::from([("x".to_owned(), vec![1, 2])])
            ],
            "{serializer}"
        );

        let (chunks, _) = collect(client.chunks("f")).await;
        assert_eq!(
            chunks,
            [Some(Bytes::from_static(b"f")), None, Some(Bytes::new())],
            "{serializer}"
        );

        let (streamed, _) = collect(client.stream(Stream { stream: 3 })).await;
        assert_eq!(
            streamed,
            [0, 1, 2].map(|stream| Stream { stream }),
            "{serializer}"
        );

        let (echoed, end) = collect(client.echo(vec!["x".into(), "y".into()], 2)).await;
        assert_eq!(echoed, ["x", "y", "x", "y"], "{serializer}");
        assert!(end.is_none());
        let (echoed, end) = collect(client.echo(vec!["z".into()], 3)).await;
        assert_eq!(echoed, ["z", "z", "z"], "{serializer}");
        assert!(matches!(
            end,
            Some(RpcError::Declared(EchoError::TooMany(TooMany { max: 2 })))
        ));

        let (typed, _) = collect(client.r#type(7)).await;
        assert_eq!(typed, [7], "{serializer}");
    }
    server.shutdown().await;
}

/// The blocking form is an iterator of the same elements, for plain
/// threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_iterators_from_a_plain_thread() {
    let (server, channel) = start().await;
    let client = StreamsClient::new(channel);
    let (counted, failed) = std::thread::spawn(move || {
        let counted: Vec<u32> = client
            .count_blocking(20, 1)
            .collect::<Result<_, _>>()
            .expect("count");
        let failed: Vec<Result<u32, RpcError<CountError>>> =
            client.count_blocking(102, 0).collect();
        (counted, failed)
    })
    .join()
    .expect("the thread");
    assert_eq!(counted, (1..=20).collect::<Vec<u32>>());
    assert_eq!(failed.len(), 101);
    assert!(failed[..100].iter().all(Result::is_ok));
    assert!(matches!(
        failed[100],
        Err(RpcError::Declared(CountError::TooMany(TooMany {
            max: 100
        })))
    ));
    server.shutdown().await;
}

/// The call opens on the first poll: a stream made and dropped unpolled
/// sends nothing; unary and one-way methods of the service work beside the
/// streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beside_unary_and_one_way_methods() {
    let (server, channel) = start().await;
    let client = StreamsClient::new(channel);
    drop(client.count(5, 0));
    client.reset().await.expect("one-way");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while client.total().await.expect("total") == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the one-way call arrives"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // One stream polled to its end: the dropped one never reached the
    // server (the connection hands requests to the server in order).
    let (items, end) = collect(client.count(3, 0)).await;
    assert_eq!((items, end.is_none()), (vec![1, 2, 3], true));
    assert_eq!(client.total().await.expect("total"), 1001);
    server.shutdown().await;
}
