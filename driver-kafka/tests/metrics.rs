//! The driver's metric families on the real broker (`KAFKA_URL`, default
//! `kafka://127.0.0.1:9092`; `scripts/services` starts tansu there): publishes by kind,
//! delivery-report latencies, failed attempts by reason, and a group's consumer lag.
//!
//! One test: the metrics recorder is process-wide.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use messaging_core::notify::{Notification, NotificationListener, NotificationResult, Notifier};
use messaging_core::telemetry::catalog;
use messaging_core::testkit::metrics::Recorded;
use messaging_core::testkit::unique;
use messaging_core::{
    Context, Endpoint, Error, Priority, RemoteError, Retry, RpcClient, RpcServer, Target,
};
use serde_json::{Value, json};

/// How long anything expected may take (a statistics report comes every 5 s).
const LIMIT: Duration = Duration::from_secs(60);

async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_confirms_failures_and_consumer_lag_are_recorded() {
    support::init_logging();
    let mut recorded = Recorded::new();
    let group = unique("group");
    let transport =
        support::broker_transport(&format!("topic_partitions=1&consumer_group={group}")).await;

    // RPC: a call (request and reply) and a cast.
    let topic = unique("metrics");
    let echo = Endpoint::new().method("echo", |_c: Context, v: Value| async move {
        Ok::<_, RemoteError>(v)
    });
    let server = RpcServer::new(&transport, Target::topic(topic.clone()).server("h1"))
        .endpoint(echo)
        .start()
        .await
        .unwrap();
    let client = RpcClient::new(&transport, Target::topic(topic.clone())).timeout(LIMIT);
    let got: Value = client
        .call(&Context::new(), "echo", json!({"x": 1}))
        .await
        .unwrap();
    assert_eq!(got, json!({"x": 1}));
    client
        .cast(&Context::new(), "echo", json!({"x": 2}))
        .await
        .unwrap();

    // A call to a topic no server ever listened on: the driver does not create it.
    let err = RpcClient::new(&transport, Target::topic(unique("nobody")))
        .timeout(Duration::from_secs(5))
        .at_least_once(true)
        .call::<_, Value>(&Context::new(), "echo", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Undeliverable { .. }), "{err:?}");

    // A record over librdkafka's `message.max.bytes` (1 MB) fails its only attempt.
    let err = Notifier::new(&transport, "p")
        .topics([unique("oversized")])
        .retry(Retry::Times(0))
        .try_notify(&Context::new(), "ev", Priority::Info, "x".repeat(2 << 20))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DeliveryFailure(_)), "{err:?}");

    // Consumer lag: a listener handles a first notification (its offset is committed),
    // then is stuck in its handler while LAGGING more arrive, so the group's
    // committed offset stays LAGGING behind the partition's end.
    const LAGGING: usize = 5;
    let lag_topic = unique("lag");
    let handled = Arc::new(AtomicUsize::new(0));
    let (release, released) = tokio::sync::watch::channel(false);
    let h = handled.clone();
    let listener = NotificationListener::new(&transport, [Target::topic(lag_topic.clone())])
        .on(Priority::Info, move |n: Notification| {
            let (h, mut released) = (h.clone(), released.clone());
            async move {
                if n.payload != json!("first") {
                    let _ = released.wait_for(|r| *r).await;
                }
                h.fetch_add(1, Ordering::SeqCst);
                Ok::<_, &str>(NotificationResult::Handled)
            }
        })
        .start()
        .await
        .unwrap();
    let notifier = Notifier::new(&transport, "p").topics([lag_topic.clone()]);
    notifier
        .try_notify(&Context::new(), "ev", Priority::Info, "first")
        .await
        .unwrap();
    wait_until("the first notification was handled", || {
        handled.load(Ordering::SeqCst) == 1
    })
    .await;
    for i in 0..LAGGING {
        notifier
            .try_notify(&Context::new(), "ev", Priority::Info, i)
            .await
            .unwrap();
    }
    let kafka_topic = format!("{lag_topic}.info");
    let labels = [
        ("driver", "kafka"),
        ("group", group.as_str()),
        ("topic", kafka_topic.as_str()),
        ("partition", "0"),
    ];
    let deadline = tokio::time::Instant::now() + LIMIT;
    let mut seen = Vec::new();
    loop {
        // The lag is `set` from each statistics report: read in the snapshot it was in.
        if let Some(lag) = recorded.take().gauge(catalog::KAFKA_CONSUMER_LAG, &labels) {
            seen.push(lag);
            if lag == LAGGING as f64 {
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no consumer lag of {LAGGING} reported for {labels:?} within {LIMIT:?} \
             (reported: {seen:?})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    release.send_replace(true);
    wait_until("every notification was handled", || {
        handled.load(Ordering::SeqCst) == 1 + LAGGING
    })
    .await;
    listener.stop().await;
    listener.wait().await.unwrap();
    server.stop().await;
    server.wait().await.unwrap();
    transport.cleanup().await;

    recorded.take();
    let publishes =
        |kind| recorded.counter(catalog::PUBLISHES, &[("driver", "kafka"), ("kind", kind)]);
    let (rpc, reply, notification) = (
        publishes("rpc"),
        publishes("reply"),
        publishes("notification"),
    );
    // Exactly: a record counts once, when the broker acknowledged it.
    assert_eq!(rpc, 2, "a call and a cast");
    assert_eq!(reply, 1, "the call's reply");
    assert_eq!(
        notification,
        1 + LAGGING as u64,
        "the notifications delivered (not the oversized one)"
    );
    let confirms = recorded.histogram(catalog::PUBLISH_CONFIRM_SECONDS, &[("driver", "kafka")]);
    assert_eq!(
        confirms.len() as u64,
        rpc + reply + notification,
        "one delivery report latency per record delivered"
    );
    assert!(
        confirms
            .iter()
            .all(|s| (0.0..LIMIT.as_secs_f64()).contains(s)),
        "{confirms:?}"
    );
    let failures = |reason| {
        recorded.counter(
            catalog::PUBLISH_FAILURES,
            &[("driver", "kafka"), ("reason", reason)],
        )
    };
    assert_eq!(failures("undeliverable"), 1, "the call to nobody");
    assert!(failures("error") >= 1, "the oversized record");
}
