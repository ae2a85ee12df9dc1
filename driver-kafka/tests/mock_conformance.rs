//! The whole conformance suite on rdkafka's in-process mock cluster: runs anywhere,
//! no broker needed.

mod support;

fn mock() -> messaging_core::testkit::TransportFactory {
    // The mock's group coordinator waits a second less than the session timeout for
    // members to (re)join whenever one joins, and refuses a follower's SyncGroup that
    // arrives after the leader's, which costs one more rebalance. A 2 s session keeps
    // each of those rebalances at 1 s, well within the suite's 5 s call timeout (at
    // 10 s, a call made while a refused follower rejoined timed out). The mock has no
    // CreateTopics request: it creates topics when asked for them.
    support::factory(
        || {
            format!(
                "kafka://{}/?consumer_session_timeout=2&create_topics=false",
                support::mock_brokers()
            )
        },
        false,
    )
}

messaging_core::conformance_tests!(mock());
