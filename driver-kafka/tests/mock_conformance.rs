//! The whole conformance suite on rdkafka's in-process mock cluster: runs anywhere,
//! no broker needed.

mod support;

fn mock() -> messaging_core::testkit::TransportFactory {
    // The mock's group coordinator waits for members up to their session timeout,
    // and it has no CreateTopics request: it creates topics when asked for them.
    support::factory(
        || {
            format!(
                "kafka://{}/?consumer_session_timeout=10&create_topics=false",
                support::mock_brokers()
            )
        },
        false,
    )
}

messaging_core::conformance_tests!(mock());
