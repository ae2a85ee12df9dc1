//! The whole conformance suite on `memory://`.

use messaging_core::testkit::TransportFactory;
use messaging_core::{Config, DriverRegistry};

fn memory() -> TransportFactory {
    TransportFactory::new(|| async {
        DriverRegistry::with_memory()
            .transport("memory://", &Config::default())
            .await
    })
}

messaging_core::conformance_tests!(memory());
