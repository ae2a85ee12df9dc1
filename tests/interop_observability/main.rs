//! Observability interop with the real Python packages: the `oslo-metrics` daemon
//! (oslo.metrics) serving a Rust service's RPC metrics on its Prometheus page, and W3C
//! trace context between Python oslo.messaging, instrumented with
//! `opentelemetry-instrumentation-oslo-messaging`, and Rust services, both ways. The
//! Python side comes from the virtualenv `scripts/services` builds.

#[path = "../common/mod.rs"]
#[allow(unused_imports)] // the notification helpers are not used here
mod common;

mod oslo_metrics;
mod tracing;
