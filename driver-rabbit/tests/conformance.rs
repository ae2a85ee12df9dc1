//! The whole conformance suite against the real RabbitMQ (`RABBIT_URL`, default
//! `rabbit://guest:guest@127.0.0.1:5672/`; `scripts/services` starts it).

mod support;

use messaging_core::Config;
use messaging_core::testkit::TransportFactory;

fn rabbit() -> TransportFactory {
    TransportFactory::new(|| async {
        support::require_broker().await;
        support::registry()
            .transport(&support::url(), &Config::default())
            .await
    })
}

messaging_core::conformance_tests!(rabbit());
