//! Interop with Python oslo.messaging's Kafka driver over a real Kafka-protocol broker
//! (tansu), both directions: Python notifiers feed Rust listeners and the reverse, with
//! priorities, contexts, pools (consumer groups) and both notifier formats, and the
//! records on the wire are what oslo writes (the 2.0 envelope with a nested `_context`).
//!
//! The Python side is `tests/peers/oslo_peer.py` run by the virtualenv that
//! `scripts/services` builds (with confluent-kafka); the broker is `KAFKA_URL` (default
//! `kafka://127.0.0.1:9092`), opened with `fetch_wait_max_ms=10` because tansu answers a
//! fetch only when the fetch wait expires. Each test uses its own topics and consumer
//! groups: Kafka groups are global, and a listener joining a group rebalances it.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{
    Peer, Setup, args, drain_notifications, py_listen, recv, run_peer, rust_listener,
    rust_notifies, setup_kafka, stop_listener, unique,
};
use messaging::notify::{Notification, Notifier, Priority, Sink};
use messaging::{Config, Context};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Runs a Python notifier of `compute.instance.update` and checks that it delivered
/// everything.
async fn python_notifies(
    s: &Setup,
    topic: &str,
    driver: &str,
    priority: &str,
    payload: Value,
    extra: &[&str],
) {
    common::python_notifies(&common::py_notify(
        &s.url,
        topic,
        driver,
        priority,
        "compute.instance.update",
        payload,
        extra,
    ))
    .await;
}

fn message_ids(got: &[Notification]) -> BTreeSet<String> {
    got.iter().map(|n| n.metadata.message_id.clone()).collect()
}

// ---------------------------------------------------------------------------------
// Python notifier -> Rust listener
// ---------------------------------------------------------------------------------

// The tests that read the same over RabbitMQ: notifications of both formats, from
// Python by priority and to Python. oslo's kafka driver writes the 2.0 envelope whatever
// the notifier's format; both arrive whole. The listeners are in pools (consumer groups).
common::notification_interop_tests!(setup: setup_kafka().await, transport: "kafka", pool: true);

/// Pools are consumer groups: every pool gets every notification, and the members of
/// one pool share them (each exactly once in the pool; how they split is up to the
/// partitions, so either member may get none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_notifications_reach_every_rust_pool_and_members_of_a_pool_share() {
    let s = setup_kafka().await;
    let topic = unique("kpypools");
    let (pool_a, pool_b) = (unique("pool-a"), unique("pool-b"));
    let (tx_a, mut rx_a) = mpsc::unbounded_channel();
    let (tx_b, mut rx_b) = mpsc::unbounded_channel();
    let mut listeners = Vec::new();
    for (pool, tx) in [(&pool_a, &tx_a), (&pool_a, &tx_a), (&pool_b, &tx_b)] {
        listeners
            .push(rust_listener(&s.transport, &topic, Some(pool), &[Priority::Info], tx).await);
    }

    let sent = 8;
    python_notifies(
        &s,
        &topic,
        "messagingv2",
        "info",
        json!({"size": 3}),
        &["--count", &sent.to_string()],
    )
    .await;
    let mut per_pool = Vec::new();
    for (name, rx) in [("pool a", &mut rx_a), ("pool b", &mut rx_b)] {
        let mut got = Vec::new();
        for _ in 0..sent {
            got.push(recv(rx, name).await.1);
        }
        got.extend(drain_notifications(rx, common::QUIET_PERIOD).await);
        assert_eq!(
            got.len(),
            sent,
            "{name} gets each notification once: {got:#?}"
        );
        assert!(got.iter().all(|n| n.payload == json!({"size": 3})));
        let ids = message_ids(&got);
        assert_eq!(ids.len(), sent, "{name}: no duplicates: {got:#?}");
        per_pool.push(ids);
    }
    assert_eq!(
        per_pool[0], per_pool[1],
        "both pools got the same notifications"
    );
    for l in listeners {
        stop_listener(l).await;
    }
}

/// Without a pool, the group is `consumer_group` (here from the URL query, as oslo's
/// `ConfigOptsProxy` allows), and a Python notifier's messages reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_notifications_reach_a_rust_listener_in_the_configured_consumer_group() {
    let s = setup_kafka().await;
    let topic = unique("kpygroup");
    let url = common::with_query(&s.url, "consumer_group", &unique("group"));
    let transport = common::open_kafka(&url, &Config::default()).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let listener = rust_listener(&transport, &topic, None, &[Priority::Critical], &tx).await;
    python_notifies(&s, &topic, "messagingv2", "critical", json!({"id": 9}), &[]).await;
    let (priority, n) = recv(&mut rx, "the critical notification").await;
    assert_eq!(priority, Priority::Critical);
    assert_eq!(n.payload, json!({"id": 9}));
    stop_listener(listener).await;
}

/// A Python listener and a Rust listener in one pool are one consumer group: each
/// notification reaches exactly one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_listeners_share_one_pool() {
    let s = setup_kafka().await;
    let topic = unique("kmixedpool");
    let pool = unique("pool");
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Rust first: the Python listener's ready line comes after the group's rebalance.
    let rs = rust_listener(&s.transport, &topic, Some(&pool), &[Priority::Info], &tx).await;
    let mut py = Peer::start(py_listen(
        &s.url,
        &topic,
        Some(&pool),
        "info",
        &["--timeout", "120"],
    ))
    .await;
    let sent = 12;
    python_notifies(
        &s,
        &topic,
        "messagingv2",
        "info",
        json!({"shared": true}),
        &["--count", &sent.to_string()],
    )
    .await;
    // Whichever member has a record's partition gets it; wait until all are in.
    let mut on_rust: Vec<Notification> = Vec::new();
    let mut on_python: Vec<Value> = Vec::new();
    let deadline = tokio::time::Instant::now() + common::MESSAGE_LIMIT;
    while on_rust.len() + on_python.len() < sent && tokio::time::Instant::now() < deadline {
        on_rust.extend(drain_notifications(&mut rx, Duration::from_millis(100)).await);
        on_python.extend(py.drain(Duration::from_millis(100)).await);
    }
    on_rust.extend(drain_notifications(&mut rx, common::QUIET_PERIOD).await);
    on_python.extend(py.drain(common::QUIET_PERIOD).await);
    let mut ids = message_ids(&on_rust);
    for line in &on_python {
        assert_eq!(line["payload"], json!({"shared": true}), "{line}");
        ids.insert(line["metadata"]["message_id"].as_str().unwrap().to_string());
    }
    assert_eq!(
        (on_rust.len() + on_python.len(), ids.len()),
        (sent, sent),
        "each notification reaches one member exactly once: Rust {} {:?}, Python {} {:?}",
        on_rust.len(),
        message_ids(&on_rust),
        on_python.len(),
        on_python
    );
    stop_listener(rs).await;
    // `listen` without --count runs until a signal: killed on drop.
    drop(py);
}

// ---------------------------------------------------------------------------------
// Rust notifier -> Python listener
// ---------------------------------------------------------------------------------

/// Every Python pool gets its own copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_notifications_reach_every_python_pool() {
    let s = setup_kafka().await;
    let topic = unique("krspools");
    let listen = |pool: String| {
        Peer::start(py_listen(
            &s.url,
            &topic,
            Some(&pool),
            "info",
            &["--count", "2", "--timeout", "60"],
        ))
    };
    let mut a = listen(unique("pool-a")).await;
    let mut b = listen(unique("pool-b")).await;
    let notifier = Notifier::new(&s.transport, "image.rs1").topics([topic.as_str()]);
    for n in 1..=2 {
        rust_notifies(
            &notifier,
            &Context::new(),
            "image.upload",
            Priority::Info,
            json!({"n": n}),
        )
        .await;
    }
    for (name, py) in [("pool a", &mut a), ("pool b", &mut b)] {
        let mut got: Vec<Value> = py
            .take(2)
            .await
            .into_iter()
            .map(|l| l["payload"].clone())
            .collect();
        got.sort_by_key(|v| v["n"].as_i64());
        assert_eq!(got, [json!({"n": 1}), json!({"n": 2})], "{name}");
    }
    for py in [a, b] {
        let (code, rest) = py.finish().await;
        assert_eq!(code, 0, "{rest:?}");
        assert!(rest.is_empty(), "one copy per pool: {rest:?}");
    }
}

/// What the Rust notifier puts on Kafka is what oslo's kafka driver writes: on topic
/// `<topic>.<priority>`, the JSON of the 2.0 envelope whose `oslo.message` holds the
/// notification with its context nested under `_context` (whatever the sink's format).
async fn rust_records_are_oslo_envelopes(sink: Sink) {
    let s = setup_kafka().await;
    let topic = unique("krswire");
    let notifier = Notifier::new(&s.transport, "compute.rs1")
        .topics([topic.as_str()])
        .sinks([sink]);
    let ctx = Context::new()
        .with("user", "alice")
        .with("request_id", "req-k3");
    rust_notifies(
        &notifier,
        &ctx,
        "compute.instance.delete.end",
        Priority::Warn,
        json!({"id": 7}),
    )
    .await;
    let run = run_peer(&args([
        "raw",
        "--url",
        &s.url,
        "--topic",
        &format!("{topic}.warn"),
        "--count",
        "1",
        "--timeout",
        "60",
    ]))
    .await;
    assert_eq!(run.code, 0, "{run:#?}");
    let record = &run.lines[0];
    assert_eq!(record["topic"], format!("{topic}.warn"), "{record}");
    let value = &record["value"];
    assert_eq!(value["oslo.version"], "2.0", "{record}");
    let inner: Value = serde_json::from_str(
        value["oslo.message"]
            .as_str()
            .unwrap_or_else(|| panic!("oslo.message is a JSON string: {record}")),
    )
    .expect("oslo.message is JSON");
    assert_eq!(inner["priority"], "WARN", "{inner}");
    assert_eq!(
        inner["event_type"], "compute.instance.delete.end",
        "{inner}"
    );
    assert_eq!(inner["publisher_id"], "compute.rs1", "{inner}");
    assert_eq!(inner["payload"], json!({"id": 7}), "{inner}");
    assert_eq!(
        inner["message_id"].as_str().map(str::len),
        Some(36),
        "{inner}"
    );
    assert!(inner["timestamp"].is_string(), "{inner}");
    assert_eq!(
        inner["_context"]["user"], "alice",
        "nested context: {inner}"
    );
    assert_eq!(inner["_context"]["request_id"], "req-k3", "{inner}");
    let flattened: Vec<&String> = inner
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("_context_"))
        .collect();
    assert!(flattened.is_empty(), "no AMQP-style context keys: {inner}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_messaging_v1_records_are_oslo_envelopes() {
    rust_records_are_oslo_envelopes(Sink::Messaging).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_messaging_v2_records_are_oslo_envelopes() {
    rust_records_are_oslo_envelopes(Sink::MessagingV2).await;
}
