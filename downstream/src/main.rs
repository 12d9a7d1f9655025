//! The getting-started guide as a user writes it: a generated server and
//! client in one program. CI builds it (scripts/test) to prove that a
//! user's build of courier and of generated code has no warnings with the
//! newest compatible dependencies; running it makes one call each way.

use courier::prelude::*;

pub mod hello {
    courier::include_idl!("hello");
}

pub mod shop {
    courier::include_idl!("shop");
}

use hello::greeter::{CountError, Greeter, GreeterClient, GreeterServer, SayHelloError};
use hello::{EmptyName, TooMany};

struct HelloGreeter;

impl Greeter for HelloGreeter {
    async fn say_hello(&self, _ctx: CallContext, name: String) -> RpcResult<String, SayHelloError> {
        if name.is_empty() {
            return Err(EmptyName {
                hint: "pass a non-empty name".into(),
            }
            .into());
        }
        Ok(format!("Hello, {name}!"))
    }

    async fn sleep(&self, _ctx: CallContext, ms: u32) -> RpcResult<u32> {
        tokio::time::sleep(std::time::Duration::from_millis(ms.into())).await;
        Ok(ms)
    }

    async fn notify(&self, _ctx: CallContext, event: String) {
        println!("event: {event}");
    }

    async fn count(
        &self,
        _ctx: CallContext,
        n: u32,
        _interval_ms: u32,
        mut items: ItemSender<u32>,
    ) -> RpcResult<(), CountError> {
        for i in 1..=n.min(100) {
            items.send(i).await?;
        }
        if n > 100 {
            return Err(TooMany { max: 100 }.into());
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder()
        .add_service(GreeterServer::new(HelloGreeter))
        .bind("127.0.0.1:0")
        .await?;
    let channel = Channel::connect(server.local_addr()).await?;
    let greeter = GreeterClient::new(channel);
    println!("{}", greeter.say_hello("Bob").await?);
    match greeter.say_hello("").await {
        Err(RpcError::Declared(SayHelloError::EmptyName(e))) => println!("typed error: {}", e.hint),
        other => println!("{other:?}"),
    }
    let mut counted = greeter.count(3, 0);
    while let Some(i) = counted.next().await {
        println!("counted {}", i?);
    }
    greeter.notify("done").await?;
    server.shutdown().await;
    Ok(())
}
