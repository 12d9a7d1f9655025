//! Authentication and authorization built on the interceptors: a bearer
//! token the client sends in metadata ([`BearerToken`]) and a server
//! interceptor that checks it, records who the caller is, and applies a
//! per-method allow-list ([`BearerTokenAuth`]).
//!
//! The token travels as the metadata entry `authorization: Bearer <token>`.
//! A request with no token, or a token the server does not know, is
//! answered status 12 (unauthenticated); a known caller calling a method
//! its principal is not allowed is answered status 13 (permission denied).
//! Tokens are compared in constant time and never appear in `Debug`
//! output, logs or status messages. The token travels in the clear unless
//! the connection uses TLS.
//!
//! ```
//! use courier::auth::{BearerToken, BearerTokenAuth};
//! use courier::server::Server;
//!
//! # fn main() -> Result<(), courier::auth::TokenError> {
//! let auth = BearerTokenAuth::new()
//!     .with_token("alice", "alice-token-0b8f")?
//!     .with_token("ops", "ops-token-77c1")?
//!     // Only `ops` may call `cancel`; every other method is open to any
//!     // known principal; `health.Health/check` needs no token.
//!     .restrict_method("shop.orders.OrderService:2", "cancel", ["ops"])
//!     .allow_anonymous("courier.Health", "check");
//! let server = Server::builder().add_interceptor(auth);
//! // Client side: `Channel::with_interceptor(BearerToken::new("alice-token-0b8f")?)`.
//! let token = BearerToken::new("alice-token-0b8f")?;
//! assert_eq!(format!("{token:?}"), "BearerToken(<redacted>)");
//! # drop(server);
//! # Ok(())
//! # }
//! ```

mod bearer_auth;
mod bearer_token;

pub use bearer_auth::BearerTokenAuth;
pub use bearer_token::{BearerToken, TokenError};

/// The metadata key that carries credentials.
pub const AUTHORIZATION: &str = "authorization";
