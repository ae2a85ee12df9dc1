//! The whole conformance suite over ZeroMQ with the static matchmaker
//! (`zmq+static://`): no name service, the map `* = 127.0.0.1:<port>` sends every
//! destination to one node on a fixed port. Each test gets its own port and one
//! transport (that node) serving all its servers and listeners.

mod support;

use std::sync::Arc;

use messaging_core::testkit::TransportFactory;
use tokio::sync::OnceCell;

fn fixed_node() -> TransportFactory {
    support::init_logging();
    let port = support::free_port();
    let url = format!(
        "zmq+static://?{}&rpc_zmq_min_port={port}&rpc_zmq_max_port={port}&zmq_static_targets=*=127.0.0.1:{port}",
        support::LOOPBACK
    );
    let node: Arc<OnceCell<messaging_core::Transport>> = Arc::default();
    TransportFactory::new(move || {
        let (node, url) = (node.clone(), url.clone());
        async move {
            node.get_or_try_init(|| support::transport(&url))
                .await
                .cloned()
        }
    })
}

messaging_core::conformance_tests!(fixed_node());
