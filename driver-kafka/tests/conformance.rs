//! The whole conformance suite on a real Kafka-protocol broker over TCP (`KAFKA_URL`,
//! default `kafka://127.0.0.1:9092`; `scripts/services` starts tansu there).

mod support;

fn broker() -> messaging_core::testkit::TransportFactory {
    support::factory(support::broker_url, true)
}

messaging_core::conformance_tests!(broker());
