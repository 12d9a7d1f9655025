//! What a call is: [`MethodDescriptor`] (the method: generated as a
//! `static`, or named at run time) and [`CallOptions`] (per call).

use std::time::Duration;

use super::response_metadata::ResponseMetadataCapture;
use crate::context::Metadata;
use crate::serializer::Serializer;

/// Facts about a method: its wire names, `@idempotent` and `@timeout`.
///
/// Generated code has one `static` per method (a `MethodDescriptor<'static>`);
/// tools that learn the methods they call at run time (the `courier` CLI,
/// gateways) make one that borrows its names, for as long as the call:
///
/// ```
/// use courier::client::MethodDescriptor;
///
/// let service = String::from("hello.Greeter");
/// let method = MethodDescriptor { idempotent: true, ..MethodDescriptor::new(&service, "say_hello") };
/// assert_eq!(method.service, "hello.Greeter");
/// ```
///
/// Nothing keeps a descriptor beyond the call it is given to: typed and
/// raw calls, interceptors and balanced channels all borrow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodDescriptor<'a> {
    /// The service's wire name (`hello.Greeter`, `shop.Orders:2`).
    pub service: &'a str,
    /// The method's wire name.
    pub method: &'a str,
    /// `@idempotent`: a balanced channel may retry the call on another
    /// instance after a connection loss.
    pub idempotent: bool,
    /// `@timeout(ms = N)`: the call's timeout when its options set none.
    pub default_timeout: Option<Duration>,
}

impl<'a> MethodDescriptor<'a> {
    /// `service/method`, not idempotent, with no default timeout.
    pub const fn new(service: &'a str, method: &'a str) -> MethodDescriptor<'a> {
        MethodDescriptor {
            service,
            method,
            idempotent: false,
            default_timeout: None,
        }
    }
}

/// How one call is made.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// The serializer of the request (and so of its answer).
    pub serializer: Serializer,
    /// The call's timeout; `None` falls back to the method's default, then
    /// the channel's default, then no timeout.
    pub timeout: Option<Duration>,
    /// Metadata sent with the request.
    pub metadata: Metadata,
    /// The call's hash key for [`ConsistentHash`](crate::balance::ConsistentHash)
    /// balancing on a [balanced channel](crate::client::Channel::balanced)
    /// (the same key goes to the same instance while membership is
    /// stable); make one with [`hash_key_of`](crate::balance::hash_key_of).
    /// Generated stubs fill it from the method's `@hash_key` parameter.
    /// Ignored by other strategies and by channels to one endpoint.
    pub hash_key: Option<u64>,
    /// Where each call's response metadata is put when it ends; `None`
    /// (the default): it is dropped.
    pub response_metadata: Option<ResponseMetadataCapture>,
}

impl CallOptions {
    /// The timeout a call uses: this call's, else the method's default,
    /// else the channel's default.
    pub fn effective_timeout(
        &self,
        method: &MethodDescriptor<'_>,
        channel_default: Option<Duration>,
    ) -> Option<Duration> {
        self.timeout.or(method.default_timeout).or(channel_default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METHOD: MethodDescriptor<'static> = MethodDescriptor {
        default_timeout: Some(Duration::from_secs(2)),
        ..MethodDescriptor::new("s", "m")
    };

    #[test]
    fn timeout_precedence() {
        let channel_default = Some(Duration::from_secs(3));
        let mut options = CallOptions::default();
        assert_eq!(
            options.effective_timeout(&METHOD, channel_default),
            Some(Duration::from_secs(2))
        );
        options.timeout = Some(Duration::from_secs(1));
        assert_eq!(
            options.effective_timeout(&METHOD, channel_default),
            Some(Duration::from_secs(1))
        );
        let no_default = MethodDescriptor {
            default_timeout: None,
            ..METHOD
        };
        assert_eq!(
            CallOptions::default().effective_timeout(&no_default, channel_default),
            channel_default
        );
        assert_eq!(
            CallOptions::default().effective_timeout(&no_default, None),
            None
        );
    }
}
