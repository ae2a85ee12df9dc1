//! The driver families of `messaging_core::telemetry::catalog` recorded by the rabbit
//! driver against the real broker: publishes by kind, publisher-confirm times, returned
//! publishes, reconnects and the time spent without a connection.
//!
//! A metrics recorder is process-wide, and a snapshot of it resets its counters and
//! drains its histograms: this binary installs one recorder, its tests run one at a
//! time, and each clears what came before it, works, then reads one snapshot.

mod support;

use std::time::Duration;

use messaging_core::telemetry::catalog;
use messaging_core::testkit::metrics::Delta;
use messaging_core::{Context, Error, Notifier, Priority, RpcClient, Target};
use serde_json::{Value, json};

/// Held by each test: what one records must not land in another's snapshot.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts a test: alone, with the broker answering and what earlier tests recorded
/// cleared.
async fn begin() -> tokio::sync::MutexGuard<'static, ()> {
    let alone = ONE_AT_A_TIME.lock().await;
    support::require_broker().await;
    Delta::take();
    alone
}

/// The label of every metric this driver records.
const RABBIT: (&str, &str) = ("driver", "rabbit");

async fn echo(client: &RpcClient, data: &str) -> messaging_core::Result<Value> {
    client
        .call(&Context::new(), "echo", json!({ "data": data }))
        .await
}

/// Calls, their replies and a notification are counted by kind when handed to the
/// broker, and every reply and notification (which wait for their confirmation) adds
/// a confirm time; nothing is counted as nacked or returned.
#[tokio::test]
async fn calls_replies_and_notifications_are_counted_with_their_confirm_times() {
    let _alone = begin().await;
    const CALLS: u64 = 5;
    let transport = support::transport().await;
    let topic = support::unique("metrics-calls");
    let server = support::echo_server(&transport, &topic).await;
    let client =
        RpcClient::new(&transport, Target::topic(topic.clone())).timeout(Duration::from_secs(10));
    for n in 0..CALLS {
        let data = format!("call {n}");
        assert_eq!(echo(&client, &data).await.unwrap(), json!(data));
    }
    let notifications = support::unique("metrics-notes");
    Notifier::new(&transport, "compute.host1")
        .topics([notifications.as_str()])
        .try_notify(&Context::new(), "e", Priority::Info, json!({}))
        .await
        .expect("a notification sent");
    let recorded = Delta::take();

    let rpc = recorded.counter(catalog::PUBLISHES, &[RABBIT, ("kind", "rpc")]);
    let replies = recorded.counter(catalog::PUBLISHES, &[RABBIT, ("kind", "reply")]);
    let notes = recorded.counter(catalog::PUBLISHES, &[RABBIT, ("kind", "notification")]);
    assert!(rpc >= CALLS, "{rpc} requests: {recorded:?}");
    assert!(replies >= CALLS, "{replies} replies: {recorded:?}");
    assert!(notes >= 1, "{notes} notifications: {recorded:?}");
    // Confirms are always on: replies and notifications wait for theirs.
    let confirms = recorded.histogram(catalog::PUBLISH_CONFIRM_SECONDS, &[RABBIT]);
    assert!(
        confirms.len() as u64 > CALLS,
        "a confirm time per reply and notification: {confirms:?}"
    );
    assert!(
        confirms
            .iter()
            .all(|s| s.is_finite() && (0.0..20.0).contains(s)),
        "seconds, within the confirm patience: {confirms:?}"
    );
    for reason in ["nack", "returned"] {
        assert_eq!(
            recorded.counter(catalog::PUBLISH_FAILURES, &[RABBIT, ("reason", reason)]),
            0,
            "no {reason}: {recorded:?}"
        );
    }

    server.stop().await;
    server.wait().await.unwrap();
    transport.cleanup().await;
    support::rabbitmqctl(&["delete_queue", &format!("{notifications}.info")]);
}

/// An at-least-once (mandatory) cast to a topic no queue is bound to comes back from
/// the broker: the send fails as undeliverable and a `returned` failure is counted,
/// after the publish itself and its confirmation (the broker acks a returned message).
#[tokio::test]
async fn an_unroutable_at_least_once_cast_counts_a_returned_publish() {
    let _alone = begin().await;
    let transport = support::transport().await;
    let topic = support::unique("metrics-nobody");
    let client = RpcClient::new(&transport, Target::topic(topic)).at_least_once(true);
    let sent = client.cast(&Context::new(), "noop", json!({})).await;
    assert!(
        matches!(sent, Err(Error::Undeliverable { .. })),
        "no queue for it: {sent:?}"
    );
    let recorded = Delta::take();

    assert_eq!(
        recorded.counter(catalog::PUBLISH_FAILURES, &[RABBIT, ("reason", "returned")]),
        1,
        "{recorded:?}"
    );
    assert_eq!(
        recorded.counter(catalog::PUBLISH_FAILURES, &[RABBIT, ("reason", "nack")]),
        0,
        "{recorded:?}"
    );
    assert_eq!(
        recorded.counter(catalog::PUBLISHES, &[RABBIT, ("kind", "rpc")]),
        1,
        "handed to the broker once: {recorded:?}"
    );
    assert_eq!(
        recorded
            .histogram(catalog::PUBLISH_CONFIRM_SECONDS, &[RABBIT])
            .len(),
        1,
        "{recorded:?}"
    );
    transport.cleanup().await;
}

/// The first connections are not reconnects. Once the broker closes the send, reply
/// and server connections, the next call that succeeds has had all three made again:
/// three reconnects at least, and the consumers' time without theirs (each waits
/// `kombu_reconnect_delay`, 1 s, before connecting again) in the disconnected seconds.
#[tokio::test]
async fn closed_connections_count_reconnects_and_the_time_without_them() {
    let _alone = begin().await;
    let transport = support::transport().await;
    let topic = support::unique("metrics-reconnect");
    let server = support::echo_server(&transport, &topic).await;
    let client =
        RpcClient::new(&transport, Target::topic(topic.clone())).timeout(Duration::from_secs(5));
    assert_eq!(echo(&client, "before").await.unwrap(), json!("before"));
    let first = Delta::take();
    assert_eq!(
        first.counter(catalog::RECONNECTS, &[RABBIT]),
        0,
        "first connections: {first:?}"
    );
    assert_eq!(
        first.counter(catalog::DISCONNECTED_SECONDS, &[RABBIT]),
        0,
        "{first:?}"
    );

    let connections = support::our_connections();
    assert!(
        connections.len() >= 3,
        "send, reply and server connections: {connections:?}"
    );
    for pid in &connections {
        support::rabbitmqctl(&["close_connection", pid, "test: closing the connection"]);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let after = loop {
        let outcome = echo(&client, "after").await;
        if outcome.is_ok() || tokio::time::Instant::now() >= deadline {
            break outcome;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(after.unwrap(), json!("after"));
    let recorded = Delta::take();

    let reconnects = recorded.counter(catalog::RECONNECTS, &[RABBIT]);
    assert!(
        reconnects >= 3,
        "send, reply and server: {reconnects}: {recorded:?}"
    );
    let disconnected = recorded.counter(catalog::DISCONNECTED_SECONDS, &[RABBIT]);
    assert!(
        disconnected >= 1,
        "at least the reconnect delay: {disconnected:?}: {recorded:?}"
    );

    server.stop().await;
    server.wait().await.unwrap();
    transport.cleanup().await;
}
