//! Interop with Python oslo.messaging over a real RabbitMQ, both directions: a Rust
//! client calls a Python server and the reverse, Python notifiers feed Rust listeners
//! and the reverse. The Python side is `tests/peers/oslo_peer.py` run by the virtualenv
//! that `scripts/services` builds; the broker is `RABBIT_URL` (default
//! `rabbit://guest:guest@127.0.0.1:5672/`). Each test uses its own topics.

#[path = "../common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{
    Peer, Seen, args, drain, forward, py_listen, py_notify, python_notifies, recording_endpoint,
    recv, run_peer, rust_notifies, setup, stop_listener, unique,
};
use messaging::notify::{NotificationFilter, NotificationListener, Notifier, Priority};
use messaging::{Context, Error, RpcClient, RpcServer, Target, Transport};
use serde_json::{Value, json};
use tokio::sync::mpsc;

mod notify_to_python;
mod notify_to_rust;
mod rpc_python_client;
mod rpc_rust_client;
mod rpc_side_by_side;

/// A call timeout long enough for a loaded machine, short enough to fail a test.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

fn client(transport: &Transport, topic: &str) -> RpcClient {
    RpcClient::new(transport, Target::topic(topic)).timeout(CALL_TIMEOUT)
}

/// A started Rust server with the recording endpoint (optionally in a namespace/version).
async fn rust_server(
    transport: &Transport,
    topic: &str,
    name: &str,
    tx: &mpsc::UnboundedSender<Seen>,
    namespace_version: Option<(&str, &str)>,
) -> RpcServer {
    let mut endpoint = recording_endpoint(name, tx.clone());
    if let Some((namespace, version)) = namespace_version {
        endpoint = endpoint.namespace(namespace).version(version);
    }
    RpcServer::new(transport, Target::topic(topic).server(name))
        .endpoint(endpoint)
        .start()
        .await
        .unwrap_or_else(|e| panic!("Rust server {name} on {topic} did not start: {e}"))
}

async fn stop(server: RpcServer) {
    server.stop().await;
    server
        .wait_timeout(Duration::from_secs(30))
        .await
        .expect("server drained in time");
}

fn remote(err: Error) -> Box<messaging::RemoteError> {
    match err {
        Error::Remote(r) => r,
        other => panic!("expected a remote error, got {other:?}"),
    }
}

fn py_send(kind: &str, url: &str, topic: &str, extra: &[&str]) -> Vec<String> {
    let mut a = args([kind, "--url", url, "--topic", topic]);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

// Notifications of both formats, from Python by priority and to Python: the tests that
// read the same over Kafka.
common::notification_interop_tests!(setup: setup().await, transport: "rabbit", pool: false);
