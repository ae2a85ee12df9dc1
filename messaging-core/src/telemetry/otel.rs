//! The bridge to OpenTelemetry (feature `opentelemetry`): when a tracing-opentelemetry
//! layer records the spans, a dispatched request's span gets the caller's span as its
//! parent, and an outgoing message carries its send span's context, so the Rust
//! spans sit in the same trace as Python's, between them.

use std::str::FromStr;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::TraceContext;

/// Makes the caller's span (from the message context) the parent of `span`. Nothing
/// happens when no tracing-opentelemetry layer records `span`.
pub(crate) fn adopt_parent(span: &tracing::Span, caller: &TraceContext) {
    let state = caller
        .state()
        .and_then(|s| TraceState::from_str(s).ok())
        .unwrap_or_default();
    let remote = SpanContext::new(
        TraceId::from(caller.trace_id_u128()),
        SpanId::from(caller.span_id_u64()),
        TraceFlags::new(caller.flags()),
        true,
        state,
    );
    let parent = opentelemetry::Context::new().with_remote_span_context(remote);
    // Fails only when no OpenTelemetry layer records the span: nothing to link then.
    let _ = span.set_parent(parent);
}

/// The OpenTelemetry context of `span`, when a tracing-opentelemetry layer records it.
pub(crate) fn of_span(span: &tracing::Span) -> Option<TraceContext> {
    let context = span.context();
    let otel_span = context.span();
    let sc = otel_span.span_context();
    if !sc.is_valid() {
        return None;
    }
    let state = sc.trace_state().header();
    Some(TraceContext::from_parts(
        u128::from_be_bytes(sc.trace_id().to_bytes()),
        u64::from_be_bytes(sc.span_id().to_bytes()),
        sc.trace_flags().to_u8(),
        (!state.is_empty()).then_some(state),
    ))
}
