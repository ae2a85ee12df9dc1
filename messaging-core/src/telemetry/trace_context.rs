//! W3C trace context in the message context, where Python puts it: the top-level
//! context keys `traceparent` and `tracestate` (on RabbitMQ they travel as
//! `_context_traceparent` and `_context_tracestate`), as written by oslo.messaging's
//! tracing and by `opentelemetry-instrumentation-oslo-messaging`.
//!
//! A server takes the trace context of each request it dispatches and keeps it as the
//! current one while the method runs ([`current`]); the calls, casts and notifications
//! the method sends carry it on, with a span id of their own, unless their context has
//! a `traceparent` of its own. So a trace that enters a Rust service through RPC goes
//! on through it, with or without an OpenTelemetry exporter. osprofiler's `trace_info`
//! is an ordinary context key and passes through untouched.

use std::fmt;

use serde_json::{Map, Value};

/// The context key of the W3C `traceparent`.
pub const TRACEPARENT: &str = "traceparent";
/// The context key of the W3C `tracestate`.
pub const TRACESTATE: &str = "tracestate";

/// A W3C trace context: trace id, parent span id, flags and the vendors' `tracestate`.
///
/// ```
/// use messaging_core::telemetry::TraceContext;
/// let tc = TraceContext::parse(
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
///     Some("congo=t61rcWkgMzE"),
/// )
/// .unwrap();
/// assert_eq!(tc.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// let child = tc.child();
/// assert_eq!(child.trace_id(), tc.trace_id());
/// assert_ne!(child.span_id(), tc.span_id());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: u128,
    span_id: u64,
    flags: u8,
    state: Option<String>,
}

impl TraceContext {
    /// Parses a `traceparent` (and `tracestate`) as the W3C recommendation says: version
    /// `00` exactly; a later version by its first four fields; ids that are all zeros,
    /// version `ff`, or anything malformed give `None`.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let text = traceparent.trim();
        let mut parts = text.split('-');
        let version = parts.next()?;
        let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
        let version = hex_exact(version, 2)? as u8;
        if version == 0xff || (version == 0 && parts.next().is_some()) {
            return None;
        }
        let trace_id = hex_exact(trace, 32)?;
        let span_id = hex_exact(span, 16)? as u64;
        let flags = hex_exact(flags, 2)? as u8;
        if trace_id == 0 || span_id == 0 {
            return None;
        }
        let state = tracestate
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        Some(TraceContext {
            trace_id,
            span_id,
            flags,
            state,
        })
    }

    /// The trace context of a message context (its `traceparent` and `tracestate`).
    pub fn from_map(context: &Map<String, Value>) -> Option<Self> {
        let traceparent = context.get(TRACEPARENT)?.as_str()?;
        let tracestate = context.get(TRACESTATE).and_then(Value::as_str);
        Self::parse(traceparent, tracestate)
    }

    /// A trace context from its parts (the OpenTelemetry bridge's).
    #[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
    pub(crate) fn from_parts(
        trace_id: u128,
        span_id: u64,
        flags: u8,
        state: Option<String>,
    ) -> Self {
        TraceContext {
            trace_id,
            span_id,
            flags,
            state,
        }
    }

    #[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
    pub(crate) fn trace_id_u128(&self) -> u128 {
        self.trace_id
    }

    #[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
    pub(crate) fn span_id_u64(&self) -> u64 {
        self.span_id
    }

    #[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
    pub(crate) fn flags(&self) -> u8 {
        self.flags
    }

    /// A span of the same trace, child of this one: a new span id, the same flags and
    /// `tracestate`.
    pub fn child(&self) -> Self {
        TraceContext {
            span_id: new_span_id(),
            ..self.clone()
        }
    }

    /// The trace id, 32 lowercase hex digits.
    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The span id, 16 lowercase hex digits.
    pub fn span_id(&self) -> String {
        format!("{:016x}", self.span_id)
    }

    /// Whether the caller sampled the trace (flag `01`).
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The `tracestate`, if any.
    pub fn state(&self) -> Option<&str> {
        self.state.as_deref()
    }

    /// The `traceparent` header value (version `00`).
    pub fn traceparent(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }

    /// Writes `traceparent` (and `tracestate`) into a message context.
    pub fn inject(&self, context: &mut Map<String, Value>) {
        context.insert(TRACEPARENT.into(), Value::String(self.traceparent()));
        match &self.state {
            Some(state) => {
                context.insert(TRACESTATE.into(), Value::String(state.clone()));
            }
            None => {
                context.remove(TRACESTATE);
            }
        }
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceContext")
            .field("traceparent", &self.traceparent())
            .field("tracestate", &self.state)
            .finish()
    }
}

/// `text` as a number if it is exactly `digits` lowercase hex digits (the W3C
/// recommendation refuses uppercase).
fn hex_exact(text: &str, digits: usize) -> Option<u128> {
    if text.len() != digits || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u128::from_str_radix(text, 16).ok()
}

fn new_span_id() -> u64 {
    loop {
        let id = rand::random::<u64>();
        if id != 0 {
            return id;
        }
    }
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// The trace context of the request being dispatched on this task, if it had one.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Runs `work` with `trace` as the current trace context (none: as it is).
pub(crate) async fn scoped<F: Future>(trace: Option<TraceContext>, work: F) -> F::Output {
    match trace {
        Some(trace) => CURRENT.scope(trace, work).await,
        None => work.await,
    }
}

/// Runs `work` (synchronous: the part of a method that runs before its first await)
/// with `trace` as the current trace context.
pub(crate) fn scoped_sync<R>(trace: Option<TraceContext>, work: impl FnOnce() -> R) -> R {
    match trace {
        Some(trace) => CURRENT.sync_scope(trace, work),
        None => work(),
    }
}

/// Carries the trace on into an outgoing message's context, sent in `span`: the
/// span's own OpenTelemetry context when an OpenTelemetry layer records it (feature
/// `opentelemetry`), else a child span of the current trace. A `traceparent` the
/// context has already is kept when it is the caller's own (a different one), and
/// replaced when it is the dispatched request's, which a method passes on with the
/// context it was given (as OpenStack services pass `ctxt` along), so that the next
/// service sees this hop as its parent, as Python's instrumentation does.
pub(crate) fn propagate(span: &tracing::Span, context: &mut Map<String, Value>) {
    let current = current();
    if context.contains_key(TRACEPARENT) {
        let passed_on =
            current.is_some() && TraceContext::from_map(context).as_ref() == current.as_ref();
        if !passed_on {
            return;
        }
    }
    #[cfg(feature = "opentelemetry")]
    if let Some(own) = super::otel::of_span(span) {
        own.inject(context);
        return;
    }
    let _ = span;
    if let Some(current) = current {
        current.child().inject(context);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_writes_back_the_w3c_example() {
        let tc = TraceContext::parse(PARENT, Some("rojo=00f067aa0ba902b7")).unwrap();
        assert_eq!(tc.traceparent(), PARENT);
        assert_eq!(tc.span_id(), "00f067aa0ba902b7");
        assert!(tc.sampled());
        assert_eq!(tc.state(), Some("rojo=00f067aa0ba902b7"));
    }

    #[test]
    fn refuses_what_the_recommendation_refuses() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(TraceContext::parse(bad, None).is_none(), "{bad:?}");
        }
        // A later version is read by its first four fields.
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future";
        assert!(TraceContext::parse(later, None).is_some());
    }

    #[test]
    fn inject_writes_the_keys_python_reads() {
        let tc = TraceContext::parse(PARENT, None).unwrap();
        let mut ctx = Map::new();
        ctx.insert(TRACESTATE.into(), json!("stale=1"));
        tc.inject(&mut ctx);
        assert_eq!(ctx[TRACEPARENT], json!(PARENT));
        assert!(!ctx.contains_key(TRACESTATE), "no state: none is sent");
        assert_eq!(TraceContext::from_map(&ctx), Some(tc));
    }

    #[tokio::test]
    async fn a_dispatched_request_s_trace_goes_on_into_what_it_sends() {
        let incoming = TraceContext::parse(PARENT, Some("k=v")).unwrap();
        let sent = scoped(Some(incoming.clone()), async {
            let mut outgoing = Map::new();
            propagate(&tracing::Span::none(), &mut outgoing);
            outgoing
        })
        .await;
        let child = TraceContext::from_map(&sent).expect("propagated");
        assert_eq!(child.trace_id(), incoming.trace_id());
        assert_ne!(child.span_id(), incoming.span_id());
        assert_eq!(child.state(), Some("k=v"));
        // The request's own context passed on gets a child span too.
        let mut passed_on = Map::new();
        incoming.inject(&mut passed_on);
        scoped(Some(incoming.clone()), async {
            propagate(&tracing::Span::none(), &mut passed_on)
        })
        .await;
        let hop = TraceContext::from_map(&passed_on).unwrap();
        assert_eq!(hop.trace_id(), incoming.trace_id());
        assert_ne!(hop.span_id(), incoming.span_id());
        // A context that has its own traceparent keeps it; outside a request nothing
        // is added.
        let own = TraceContext::parse(PARENT, None).unwrap().child();
        let mut mine = Map::new();
        own.inject(&mut mine);
        scoped(Some(incoming), async {
            propagate(&tracing::Span::none(), &mut mine)
        })
        .await;
        assert_eq!(TraceContext::from_map(&mine), Some(own));
        let mut outside = Map::new();
        propagate(&tracing::Span::none(), &mut outside);
        assert!(outside.is_empty());
    }
}
