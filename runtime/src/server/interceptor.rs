//! Server interceptors: async hooks that see every call before its handler
//! runs, and can reject it (e.g. status 12, unauthenticated) or add to its
//! metadata what they learned (the user behind a token).

use crate::BoxFuture;
use crate::context::CallContext;
use crate::error::Status;

/// A hook every call a server serves passes through, installed with
/// [`ServerBuilder::add_interceptor`](super::ServerBuilder::add_interceptor).
///
/// Interceptors run in the order they were added, on the call's own task
/// (under its deadline and panic guard), before its args are decoded; the
/// first `Err` answers the call with that status and the handler never
/// runs. Statuses 0 and 1 can't be used to reject (they carry messages);
/// they are answered as status 8. A server without interceptors pays
/// nothing for them.
///
/// ```
/// use courier::server::ServerInterceptor;
/// use courier::{BoxFuture, CallContext, Status, StatusCode};
///
/// struct RequireToken(&'static str);
///
/// impl ServerInterceptor for RequireToken {
///     fn intercept<'a>(&'a self, call: &'a mut CallContext) -> BoxFuture<'a, Result<(), Status>> {
///         Box::pin(async move {
///             match call.metadata().get("authorization") {
///                 Some(token) if token == self.0 => {
///                     call.metadata_mut().insert("user", "alice");
///                     Ok(())
///                 }
///                 _ => Err(Status::new(StatusCode::Unauthenticated, "missing or bad token")),
///             }
///         })
///     }
/// }
/// ```
pub trait ServerInterceptor: Send + Sync + 'static {
    /// Looks at (and may change the metadata of) one incoming call; `Err`
    /// rejects it with that status.
    fn intercept<'a>(&'a self, call: &'a mut CallContext) -> BoxFuture<'a, Result<(), Status>>;
}
