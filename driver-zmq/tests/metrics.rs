//! The driver's metric families over ZeroMQ on loopback (`zmq+dummy://`, no service
//! needed): publishes by kind, failed attempts by reason, the peers of the transports
//! and what waits in their outgoing queues, back to nothing once they are cleaned up.
//!
//! One test: the metrics recorder is process-wide.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use driver_zmq::destination::{Destination, Member};
use driver_zmq::matchmaker::{InProcess, Matchmaker};
use messaging_core::notify::{Notification, NotificationListener, Notifier, Priority};
use messaging_core::rpc::{Endpoint, RpcServer};
use messaging_core::telemetry::catalog;
use messaging_core::testkit::metrics::Recorded;
use messaging_core::testkit::unique;
use messaging_core::{Context, Error, RemoteError, RpcClient, Target, Transport};
use serde_json::{Value, json};
use zeromq::{RouterSocket, Socket};

/// How long anything expected may take.
const LIMIT: Duration = Duration::from_secs(20);

/// Waiting on this driver's gauges, all of which move by increments: where one is
/// now is the sum of its changes that [`Recorded`] keeps.
trait WaitForGauge {
    /// Waits until the gauge `name` satisfies `ok`; fails after [`LIMIT`] saying it
    /// expected `what`.
    async fn wait_for_gauge(&mut self, name: &str, what: &str, ok: impl Fn(f64) -> bool);
}

impl WaitForGauge for Recorded {
    async fn wait_for_gauge(&mut self, name: &str, what: &str, ok: impl Fn(f64) -> bool) {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            self.take();
            let value = self.gauge(name, &[("driver", "zmq")]);
            if value.is_some_and(&ok) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name}: expected {what} within {LIMIT:?}, is {value:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn echo() -> Endpoint {
    Endpoint::new().method("echo", |_c: Context, v: Value| async move {
        Ok::<_, RemoteError>(v)
    })
}

type Seen = Arc<Mutex<Vec<Value>>>;

async fn listen(
    transport: &Transport,
    topic: &str,
) -> (messaging_core::NotificationListener, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let listener = NotificationListener::new(transport, [Target::topic(topic)])
        .on(Priority::Info, move |n: Notification| {
            let s = s.clone();
            async move { s.lock().unwrap().push(n.payload) }
        })
        .start()
        .await
        .unwrap();
    (listener, seen)
}

async fn wait_for(seen: &Seen, n: usize) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while seen.lock().unwrap().len() < n {
        assert!(tokio::time::Instant::now() < deadline, "{n} notifications");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_failures_peers_and_queue_depth_are_recorded() {
    support::init_logging();
    let mut recorded = Recorded::new();
    let url = format!("zmq+dummy://?{}", support::LOOPBACK);
    let server_side = support::transport(&url).await.unwrap();
    let client_side = support::transport(&url).await.unwrap();
    let topic = unique("metrics");
    let server = RpcServer::new(&server_side, Target::topic(topic.clone()).server("s1"))
        .endpoint(echo())
        .start()
        .await
        .unwrap();
    let (listener, seen) = listen(&server_side, &topic).await;

    // Calls (requests and replies), a cast and notifications, client to server.
    let client = RpcClient::new(&client_side, Target::topic(topic.clone())).timeout(LIMIT);
    for n in 0..3 {
        let v: Value = client
            .call(&Context::new(), "echo", json!({ "n": n }))
            .await
            .unwrap();
        assert_eq!(v, json!({ "n": n }));
    }
    client
        .cast(&Context::new(), "echo", json!({}))
        .await
        .unwrap();
    let notifier = Notifier::new(&client_side, "p").topics([topic.clone()]);
    for n in 0..2 {
        notifier
            .try_notify(&Context::new(), "ev", Priority::Info, n)
            .await
            .unwrap();
    }
    wait_for(&seen, 2).await;
    // Two peers while they talk: the client's link to the server's node, and the
    // client's connection to the server's ROUTER.
    recorded
        .wait_for_gauge(catalog::ZMQ_PEERS, "2 peers", |peers| peers == 2.0)
        .await;

    // A notification nobody listens for yet waits in the client's outbox...
    let later = unique("later");
    Notifier::new(&client_side, "p")
        .topics([later.clone()])
        .try_notify(&Context::new(), "ev", Priority::Info, "kept")
        .await
        .unwrap();
    recorded
        .wait_for_gauge(catalog::ZMQ_QUEUE_DEPTH, "a message waiting", |depth| {
            depth >= 1.0
        })
        .await;
    // ...until a listener takes it.
    let (late_listener, late_seen) = listen(&server_side, &later).await;
    wait_for(&late_seen, 1).await;
    recorded
        .wait_for_gauge(catalog::ZMQ_QUEUE_DEPTH, "nothing waiting", |depth| {
            depth == 0.0
        })
        .await;

    // Failures, from a transport that waits a second at most: a confirmed cast to a
    // node that never acks (it accepts connections and never reads) times out, and a
    // call to a node nobody listens for fails for want of a connection.
    let impatient = support::transport(&format!("{url}&zmq_send_timeout=1"))
        .await
        .unwrap();
    let silent_port = support::free_port();
    let mut silent = RouterSocket::new();
    silent
        .bind(&format!("tcp://127.0.0.1:{silent_port}"))
        .await
        .unwrap();
    let dead_port = support::free_port();
    let server_key = |server: &str| Destination::Server {
        exchange: "openstack".into(),
        topic: topic.clone(),
        server: server.into(),
    };
    let matchmaker = InProcess::shared();
    for (server, port) in [("silent", silent_port), ("dead", dead_port)] {
        matchmaker
            .register(
                &server_key(server),
                &Member::node(format!("127.0.0.1:{port}")),
                None,
            )
            .await
            .unwrap();
    }
    let impatient_client = RpcClient::new(&impatient, Target::topic(topic.clone()));
    let err = impatient_client
        .prepare()
        .server("silent")
        .at_least_once(true)
        .cast(&Context::new(), "echo", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DeliveryFailure(_)), "{err:?}");
    let err = impatient_client
        .prepare()
        .server("dead")
        .timeout(Duration::from_secs(1))
        .call::<_, Value>(&Context::new(), "echo", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");

    // Everything cleaned up: no peer, nothing waiting.
    for l in [listener, late_listener] {
        l.stop().await;
        l.wait().await.unwrap();
    }
    server.stop().await;
    server.wait().await.unwrap();
    for transport in [&client_side, &server_side, &impatient] {
        transport.cleanup().await;
    }
    drop(silent);
    recorded
        .wait_for_gauge(catalog::ZMQ_PEERS, "no peer after cleanup", |peers| {
            peers == 0.0
        })
        .await;
    recorded
        .wait_for_gauge(catalog::ZMQ_QUEUE_DEPTH, "nothing waiting", |depth| {
            depth == 0.0
        })
        .await;

    recorded.take();
    let publishes =
        |kind| recorded.counter(catalog::PUBLISHES, &[("driver", "zmq"), ("kind", kind)]);
    assert!(
        publishes("rpc") >= 4,
        "3 calls and a cast: {}",
        publishes("rpc")
    );
    assert!(publishes("reply") >= 3, "3 replies: {}", publishes("reply"));
    assert!(
        publishes("notification") >= 3,
        "3 notifications: {}",
        publishes("notification")
    );
    let failures = |reason| {
        recorded.counter(
            catalog::PUBLISH_FAILURES,
            &[("driver", "zmq"), ("reason", reason)],
        )
    };
    assert!(failures("timeout") >= 1, "the cast nobody acked");
    assert!(failures("error") >= 1, "the call to a dead node");
}
