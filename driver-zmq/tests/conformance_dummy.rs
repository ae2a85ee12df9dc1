//! The whole conformance suite over ZeroMQ on loopback, with the in-process
//! matchmaker (`zmq+dummy://`): each transport is a node with a port of its own.

mod support;

fn dummy() -> messaging_core::testkit::TransportFactory {
    support::init_logging();
    support::factory(format!("zmq+dummy://?{}", support::LOOPBACK))
}

messaging_core::conformance_tests!(dummy());
