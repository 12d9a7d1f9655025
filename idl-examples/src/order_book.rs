//! An implementation of `shop.OrderBook`, kept in memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use courier::{CallContext, RpcError};

use crate::shop::{
    GetError, LineItem, Order, OrderBook, OrderNotFound, OrderStatus, SetStatusError,
};

/// Orders by id.
#[derive(Debug, Default)]
pub struct MemoryOrderBook {
    orders: Mutex<BTreeMap<u64, Order>>,
}

impl MemoryOrderBook {
    fn orders(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Order>> {
        // A poisoned lock only means another handler panicked mid-update of
        // a map whose every state is valid; keep serving.
        self.orders
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
        let mut orders = self.orders();
        let id = orders.keys().next_back().map_or(1, |last| last + 1);
        orders.insert(
            id,
            Order {
                id,
                items,
                note,
                labels,
                ..Order::default()
            },
        );
        Ok(id)
    }

    async fn get(&self, _ctx: CallContext, id: u64) -> Result<Order, RpcError<GetError>> {
        self.orders()
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
        match self.orders().get_mut(&id) {
            Some(order) => {
                order.status = status;
                Ok(())
            }
            None => Err(OrderNotFound { id }.into()),
        }
    }

    async fn by_status(
        &self,
        _ctx: CallContext,
        status: OrderStatus,
    ) -> Result<Vec<Order>, RpcError> {
        Ok(self
            .orders()
            .values()
            .filter(|order| order.status == status)
            .cloned()
            .collect())
    }
}
