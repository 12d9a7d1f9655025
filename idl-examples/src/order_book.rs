//! An implementation of `shop.OrderBook`, kept in memory, within bounds.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use courier::codegen::prost::Message;
use courier::{CallContext, RpcError, Status, StatusCode};

use crate::shop::order_book::{GetError, OrderBook, SetStatusError};
use crate::shop::{LineItem, Order, OrderNotFound, OrderStatus};

/// At most this many orders are kept.
pub const MAX_ORDERS: usize = 10_000;
/// At most this many bytes of orders (encoded) are kept, so that a
/// `by_status` answer always fits a frame.
pub const MAX_ORDER_BYTES: usize = 8 * 1024 * 1024;

/// Orders by id, at most [`MAX_ORDERS`] and [`MAX_ORDER_BYTES`] of them:
/// once full, `place` is answered status 18 (resource exhausted) and
/// nothing already placed is lost.
#[derive(Debug, Default)]
pub struct MemoryOrderBook {
    book: Mutex<Book>,
}

#[derive(Debug, Default)]
struct Book {
    orders: BTreeMap<u64, Order>,
    /// The encoded size of every order kept.
    bytes: usize,
}

impl MemoryOrderBook {
    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        // A poisoned lock only means another handler panicked mid-update of
        // a map whose every state is valid; keep serving.
        self.book
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl OrderBook for MemoryOrderBook {
    async fn place(
        &self,
        _ctx: CallContext,
        items: Vec<LineItem>,
        note: Option<String>,
        labels: HashMap<String, String>,
    ) -> Result<u64, RpcError> {
        let mut book = self.book();
        let id = book.orders.keys().next_back().map_or(1, |last| last + 1);
        let order = Order {
            id,
            items,
            note,
            labels,
            ..Order::default()
        };
        let bytes = order.encoded_len();
        if book.orders.len() >= MAX_ORDERS || book.bytes + bytes > MAX_ORDER_BYTES {
            return Err(RpcError::Status(Status::new(
                StatusCode::ResourceExhausted,
                format!(
                    "the order book is full ({} orders, {} bytes; at most {MAX_ORDERS} orders and {MAX_ORDER_BYTES} bytes)",
                    book.orders.len(),
                    book.bytes
                ),
            )));
        }
        book.bytes += bytes;
        book.orders.insert(id, order);
        Ok(id)
    }

    async fn get(&self, _ctx: CallContext, id: u64) -> Result<Order, RpcError<GetError>> {
        self.book()
            .orders
            .get(&id)
            .cloned()
            .ok_or_else(|| OrderNotFound { id }.into())
    }

    async fn set_status(
        &self,
        _ctx: CallContext,
        id: u64,
        status: OrderStatus,
    ) -> Result<(), RpcError<SetStatusError>> {
        let mut book = self.book();
        let Some(order) = book.orders.get_mut(&id) else {
            return Err(OrderNotFound { id }.into());
        };
        // The status's encoding can change the order's size.
        let before = order.encoded_len();
        order.status = status;
        let after = order.encoded_len();
        book.bytes = book.bytes + after - before;
        Ok(())
    }

    async fn by_status(
        &self,
        _ctx: CallContext,
        status: OrderStatus,
    ) -> Result<Vec<Order>, RpcError> {
        Ok(self
            .book()
            .orders
            .values()
            .filter(|order| order.status == status)
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn ctx() -> CallContext {
        let peer: SocketAddr = "127.0.0.1:1".parse().expect("an address");
        CallContext::new(None, courier::Metadata::new(), peer)
    }

    #[tokio::test]
    async fn a_full_order_book_refuses_new_orders_and_keeps_the_old_ones() {
        let book = MemoryOrderBook::default();
        let note = "n".repeat(MAX_ORDER_BYTES / 4);
        let mut placed = Vec::new();
        let refused = loop {
            match book
                .place(ctx(), Vec::new(), Some(note.clone()), HashMap::new())
                .await
            {
                Ok(id) => placed.push(id),
                Err(error) => break error,
            }
        };
        assert_eq!(refused.code(), StatusCode::ResourceExhausted);
        assert_eq!(placed.len(), 3);
        for id in placed {
            assert!(book.get(ctx(), id).await.is_ok(), "order {id} kept");
        }
        assert!(book.book().bytes <= MAX_ORDER_BYTES);
    }
}
