//! The whole conformance suite against the real RabbitMQ (`RABBIT_URL`, default
//! `rabbit://guest:guest@127.0.0.1:5672/`; `scripts/services` starts it).

use messaging_core::testkit::TransportFactory;
use messaging_core::{Config, DriverRegistry};

fn url() -> String {
    std::env::var("RABBIT_URL").unwrap_or_else(|_| "rabbit://guest:guest@127.0.0.1:5672/".into())
}

fn rabbit() -> TransportFactory {
    TransportFactory::new(|| async {
        let url = url();
        let mut registry = DriverRegistry::with_memory();
        driver_rabbit::register(&mut registry);
        let transport = registry.transport(&url, &Config::default()).await?;
        Ok(transport)
    })
}

messaging_core::conformance_tests!(rabbit());
