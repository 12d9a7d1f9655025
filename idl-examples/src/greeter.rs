//! An implementation of `hello.Greeter`.

use std::time::Duration;

use courier::{CallContext, RpcError};
use tokio::sync::watch;

use crate::hello::{EmptyName, Greeter, SayHelloError};

/// Greets, sleeps, and records the events it is sent.
#[derive(Debug)]
pub struct HelloGreeter {
    events: watch::Sender<Vec<String>>,
}

impl Default for HelloGreeter {
    fn default() -> Self {
        HelloGreeter {
            events: watch::Sender::new(Vec::new()),
        }
    }
}

impl HelloGreeter {
    /// Follows the events received through `notify`, in arrival order.
    pub fn events(&self) -> watch::Receiver<Vec<String>> {
        self.events.subscribe()
    }
}

impl Greeter for HelloGreeter {
    async fn say_hello(
        &self,
        _ctx: CallContext,
        name: String,
    ) -> Result<String, RpcError<SayHelloError>> {
        if name.is_empty() {
            return Err(EmptyName {
                hint: "pass a non-empty name, e.g. \"Bob\"".into(),
            }
            .into());
        }
        Ok(format!("Hello, {name}!"))
    }

    async fn sleep(&self, _ctx: CallContext, ms: u32) -> Result<u32, RpcError> {
        tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
        Ok(ms)
    }

    async fn notify(&self, _ctx: CallContext, event: String) {
        self.events.send_modify(|events| events.push(event));
    }
}
