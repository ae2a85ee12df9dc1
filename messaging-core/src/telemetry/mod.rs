//! What operators see: metrics, spans and trace propagation.
//!
//! - [`rpc_metrics`]: oslo.messaging's RPC metric families (client and server), through
//!   the [`metrics`] facade; the application installs the exporter it wants.
//! - [`oslo_metrics`]: the same families sent to the oslo.metrics daemon, when
//!   `[oslo_messaging_metrics] metrics_enabled` is set.
//! - [`catalog`]: the families beyond oslo's (notifications, in-flight calls, driver
//!   publishes, confirms, reconnects, Kafka lag, ZeroMQ peers), facade only.
//! - [`trace_context`]: W3C `traceparent`/`tracestate` in the message context, where
//!   Python's instrumentation puts them.
//! - Spans: `rpc.send` (a call or a cast, as `messaging.operation` says),
//!   `rpc.dispatch`, `notification.send` and `notification.receive`, with
//!   OpenTelemetry's messaging and RPC fields (`messaging.system`,
//!   `messaging.destination.name`, `messaging.operation`, `messaging.message.id`,
//!   `rpc.system`, `rpc.method`, `rpc.service`) and `openstack.request_id` from the
//!   context, each left out when the message has none; `otel.name` and `otel.kind` name
//!   them as the Python instrumentation does (`<namespace>.<method> send`, `... receive`).

pub mod catalog;
pub mod oslo_metrics;
#[cfg(feature = "opentelemetry")]
mod otel;
pub mod rpc_metrics;
pub mod trace_context;

pub use oslo_metrics::OsloMetricsSink;
pub use trace_context::{TraceContext, current as current_trace};

/// Makes the caller's span the parent of a dispatched request's `span` (feature
/// `opentelemetry`; otherwise the trace goes on through [`current_trace`] only).
pub(crate) fn adopt_parent(span: &tracing::Span, caller: Option<&TraceContext>) {
    #[cfg(feature = "opentelemetry")]
    if let Some(caller) = caller {
        otel::adopt_parent(span, caller);
    }
    #[cfg(not(feature = "opentelemetry"))]
    let _ = (span, caller);
}

use serde_json::{Map, Value};

/// OpenTelemetry's `messaging.system` for a driver name, as the Python
/// instrumentation reports it (`rabbit` is `rabbitmq`; others by their own name).
pub fn messaging_system(driver: &str) -> &str {
    match driver {
        "rabbit" | "kombu" | "amqp" => "rabbitmq",
        "zmq" => "zeromq",
        other => other,
    }
}

/// The span name the Python instrumentation gives an RPC message:
/// `<namespace>.<method> <operation>`, or `<method> <operation>` without a namespace.
pub(crate) fn rpc_span_name(namespace: Option<&str>, method: &str, operation: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}.{method} {operation}"),
        None => format!("{method} {operation}"),
    }
}

/// The context's `request_id`, for the `openstack.request_id` span field (left out
/// when the context has none).
pub(crate) fn request_id(context: &Map<String, Value>) -> Option<&str> {
    context.get("request_id").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_names_and_systems_are_the_python_instrumentation_s() {
        assert_eq!(
            rpc_span_name(Some("baremetal"), "add", "send"),
            "baremetal.add send"
        );
        assert_eq!(rpc_span_name(None, "add", "receive"), "add receive");
        assert_eq!(messaging_system("rabbit"), "rabbitmq");
        assert_eq!(messaging_system("kafka"), "kafka");
    }
}
