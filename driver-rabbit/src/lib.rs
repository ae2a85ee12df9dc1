//! The RabbitMQ transport (`rabbit://`, `amqp://`) of the messaging crate family, on
//! lapin, wire compatible with Python oslo.messaging's rabbit driver: the same
//! exchanges, queues, bindings, declare flags, message properties and bodies, so a Rust
//! service and Python services share one broker both ways.
//!
//! Register it in a registry and open transports by URL:
//!
//! ```no_run
//! # async fn run() -> messaging_core::Result<()> {
//! use messaging_core::{Config, DriverRegistry};
//!
//! let mut registry = DriverRegistry::with_memory();
//! driver_rabbit::register(&mut registry);
//! let transport = registry
//!     .transport("rabbit://guest:guest@127.0.0.1:5672/", &Config::default())
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! `[oslo_messaging_rabbit]` options ([`RabbitSection`], which this crate owns and
//! [`register`] registers) apply, and URL query parameters named like them override them
//! (`rabbit://h/?rabbit_qos_prefetch_count=10`).

mod broker_version;
mod compression;
mod connection;
mod consumer;
mod driver;
mod incoming;
mod kinds;
mod options;
mod publisher;
mod queue_manager;
mod reply;
mod telemetry;
mod topology;

use std::sync::Arc;

use async_trait::async_trait;
use messaging_core::driver::Driver;
use messaging_core::{Config, DriverFactory, DriverRegistry, Result, TransportUrl};

pub use compression::Compression;
pub use driver::RabbitDriver;
pub use options::{RabbitOptions, RabbitSection};

/// Makes [`RabbitDriver`]s; registered for `rabbit` and `amqp`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RabbitFactory;

#[async_trait]
impl DriverFactory for RabbitFactory {
    async fn connect(&self, url: &TransportUrl, config: &Config) -> Result<Arc<dyn Driver>> {
        Ok(Arc::new(RabbitDriver::new(url, config)?))
    }
}

/// Registers the driver under `rabbit` and `amqp` (an alias, as in oslo), and its
/// section, [`RabbitSection`].
pub fn register(registry: &mut DriverRegistry) {
    let factory: Arc<dyn DriverFactory> = Arc::new(RabbitFactory);
    registry.register("rabbit", factory.clone());
    registry.register("amqp", factory);
    registry.register_section::<RabbitSection>();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn registered_as_rabbit_and_amqp() {
        let mut registry = DriverRegistry::new();
        register(&mut registry);
        assert_eq!(registry.schemes(), ["amqp", "rabbit"]);
        // Opening a transport does not connect yet: no broker needed here.
        for url in ["rabbit://h:1/", "amqp://h:1/"] {
            let transport = registry.transport(url, &Config::default()).await.unwrap();
            assert_eq!(transport.driver().name(), "rabbit");
            assert!(!transport.capabilities().isolated_exchanges);
        }
    }
}
