//! The whole conformance suite over ZeroMQ with the Redis matchmaker
//! (`zmq+redis://`, `REDIS_URL`, default 127.0.0.1:6379; `scripts/services` starts
//! it): each transport is a node with a port of its own, registered in Redis.

mod support;

fn redis() -> messaging_core::testkit::TransportFactory {
    support::init_logging();
    support::require_redis();
    support::factory(format!("{}/?{}", support::redis_url(), support::LOOPBACK))
}

messaging_core::conformance_tests!(redis());
