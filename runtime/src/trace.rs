//! Whether the per-call spans could be recorded at all.

use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};

/// Whether a debug-level span could be recorded anywhere: by a tracing
/// subscriber that takes debug spans, or by a `log` logger at debug level
/// (tracing's `log` feature, which any crate of a program can turn on,
/// turns spans into log records while no subscriber is set). When neither
/// can, `debug_span!` still builds the span's fields for that bridge
/// before finding nobody listens: ~200 instructions a span, twice per call
/// (the client's and the server's; callgrind). The calls then take
/// `Span::none()`, which every span of theirs treats as disabled already.
#[inline]
pub(crate) fn debug_spans_enabled() -> bool {
    (STATIC_MAX_LEVEL >= LevelFilter::DEBUG && LevelFilter::current() >= LevelFilter::DEBUG)
        || log::max_level() >= log::LevelFilter::Debug
}
