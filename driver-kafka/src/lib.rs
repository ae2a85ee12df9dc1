//! The Kafka transport (`kafka://`) of the messaging crate family, on rdkafka
//! (librdkafka).
//!
//! - **Notifications** are wire compatible with Python oslo.messaging's Kafka driver:
//!   topic `<topic>.<priority>`, the 2.0 envelope with a nested `_context`, consumer
//!   group = the listener's pool or `consumer_group`. Unlike oslo, the notifier waits
//!   for the broker's delivery report and honours `retry`, and listeners commit a
//!   notification's offset after its handler settles it (at least once; oslo's
//!   commit-before-dispatch is the `commit_before_dispatch` option). A requeued
//!   notification is delivered again.
//! - **RPC** (which oslo's Kafka driver lacks): call, cast, fanout and directed calls
//!   with the RabbitMQ driver's semantics, over topics described in the `naming`
//!   module docs: a topic per target shared by its servers' consumer group, one per
//!   server, a fanout topic every server reads from its end, and a reply topic per
//!   transport.
//! - The driver creates the topics it needs through the admin API.
//! - **Metrics** (through the `metrics` facade, `driver="kafka"`): records the broker
//!   acknowledged by kind, their delivery-report latency, failed send attempts
//!   (`error`, or `undeliverable` for an RPC topic that does not exist), and each
//!   consumer group's lag per partition from librdkafka's statistics (every 5 s).
//!
//! ```no_run
//! # async fn run() -> messaging_core::Result<()> {
//! use messaging_core::{Config, DriverRegistry};
//!
//! let mut registry = DriverRegistry::with_memory();
//! driver_kafka::register(&mut registry);
//! let transport = registry
//!     .transport("kafka://127.0.0.1:9092/?fetch_wait_max_ms=10", &Config::default())
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! `[oslo_messaging_kafka]` options ([`KafkaSection`], which this crate owns and
//! [`register`] registers) apply, and URL query parameters named like them override
//! them.

mod admin;
mod consumer;
mod driver;
mod incoming;
mod kinds;
pub mod naming;
mod options;
mod producer;
mod telemetry;

use std::sync::Arc;

use async_trait::async_trait;
use messaging_core::driver::Driver;
use messaging_core::{Config, DriverFactory, DriverRegistry, Result, TransportUrl};

pub use driver::KafkaDriver;
pub use options::{KafkaOptions, KafkaSection};

/// Makes [`KafkaDriver`]s; registered for `kafka`.
#[derive(Debug, Clone, Copy, Default)]
pub struct KafkaFactory;

#[async_trait]
impl DriverFactory for KafkaFactory {
    async fn connect(&self, url: &TransportUrl, config: &Config) -> Result<Arc<dyn Driver>> {
        Ok(Arc::new(KafkaDriver::new(url, config)?))
    }
}

/// Registers the driver under `kafka`, and its section, [`KafkaSection`].
pub fn register(registry: &mut DriverRegistry) {
    registry.register("kafka", Arc::new(KafkaFactory));
    registry.register_section::<KafkaSection>();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn registered_as_kafka() {
        let mut registry = DriverRegistry::new();
        register(&mut registry);
        assert_eq!(registry.schemes(), ["kafka"]);
        // Opening a transport does not connect yet: no broker needed here.
        let transport = registry
            .transport("kafka://127.0.0.1:1/", &Config::default())
            .await
            .unwrap();
        assert_eq!(transport.driver().name(), "kafka");
        assert!(!transport.capabilities().total_order);
    }
}
