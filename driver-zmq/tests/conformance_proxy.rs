//! The whole conformance suite over ZeroMQ through a `messaging-zmq-proxy` (run in
//! this process): every node connects to the proxy's ROUTER (and SUB to its PUB for
//! fanout) instead of binding a port; the in-process matchmaker registers node ids.

mod support;

use driver_zmq::proxy::Proxy;

async fn proxied() -> messaging_core::testkit::TransportFactory {
    support::init_logging();
    let proxy = std::sync::Arc::new(
        Proxy::bind("127.0.0.1:0", "127.0.0.1:0")
            .await
            .expect("proxy binds"),
    );
    let url = format!(
        "zmq+dummy://?{}&use_router_proxy=true&zmq_proxy_router={}&zmq_proxy_publisher={}",
        support::LOOPBACK,
        proxy.router_address(),
        proxy.publisher_address()
    );
    let factory = support::factory(url);
    // The proxy lives as long as the factory's transports are made.
    messaging_core::testkit::TransportFactory::new(move || {
        let (factory, _proxy) = (factory.clone(), proxy.clone());
        async move { factory.transport().await }
    })
}

messaging_core::conformance_tests!(proxied().await);
