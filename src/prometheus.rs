//! A Prometheus page of the crate's metrics (feature `prometheus`): oslo's RPC
//! families, with oslo.metrics' histogram buckets, and the families beyond them
//! ([`messaging_core::telemetry::catalog`]), on `http://ADDR/metrics`.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! messaging::prometheus::serve("127.0.0.1:9464".parse()?)?;
//! // ... run the service; Prometheus scrapes http://127.0.0.1:9464/metrics
//! # Ok(()) }
//! ```

use std::net::SocketAddr;

use messaging_core::telemetry::rpc_metrics::PROCESSING_SECONDS_BUCKETS;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};

/// Installs the process's metrics recorder, a Prometheus exporter serving the page
/// on `addr`, from a task of the current tokio runtime. Fails when a recorder is
/// installed already or the address cannot be bound.
pub fn serve(addr: SocketAddr) -> Result<(), BuildError> {
    builder()?.with_http_listener(addr).install()
}

/// A Prometheus exporter builder set up for the crate's metrics: histograms with
/// oslo.metrics' buckets (so Python's and Rust's can be summed) rather than
/// summaries. For an application that serves the page its own way.
pub fn builder() -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new().set_buckets_for_metric(
        Matcher::Suffix("_seconds".to_string()),
        PROCESSING_SECONDS_BUCKETS,
    )
}
