//! OpenTelemetry for a service built on this crate (feature `opentelemetry`): the
//! crate's spans (`rpc.send`, `rpc.dispatch`, `notification.send`,
//! `notification.receive`) recorded as OpenTelemetry spans, in the traces Python
//! services take part in, and exported over OTLP.
//!
//! ```no_run
//! use tracing_subscriber::layer::SubscriberExt;
//! use tracing_subscriber::util::SubscriberInitExt;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = messaging::opentelemetry::otlp_provider("nova-compute", "http://127.0.0.1:4318/v1/traces")?;
//! tracing_subscriber::registry()
//!     .with(messaging::opentelemetry::layer(&provider))
//!     .init();
//! // ... serve; at exit, send what is left:
//! provider.shutdown()?;
//! # Ok(()) }
//! ```

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

pub use opentelemetry_sdk::trace::SdkTracerProvider as TracerProvider;

/// The instrumentation scope of the crate's spans.
const SCOPE: &str = "messaging";

/// A tracer provider that exports spans in batches over OTLP/HTTP (protobuf) to
/// `endpoint` (a collector's traces URL, such as `http://127.0.0.1:4318/v1/traces`),
/// as `service_name`.
pub fn otlp_provider(
    service_name: &str,
    endpoint: &str,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .with_headers(Default::default())
        .build()?;
    let resource = Resource::builder_empty()
        .with_service_name(service_name.to_string())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build())
}

/// A tracing layer that records spans into `provider`: add it to the application's
/// subscriber.
///
/// The spans carry the fields the Python instrumentation's carry and nothing per span
/// that the trace does not need: no source location, thread or tracing target
/// attributes, no busy and idle times. Each of those costs on every message; a layer
/// that wants them is `tracing_opentelemetry::layer()` configured as needed.
pub fn layer<S>(provider: &SdkTracerProvider) -> OpenTelemetryLayer<S, SdkTracer>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(SCOPE))
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
}
