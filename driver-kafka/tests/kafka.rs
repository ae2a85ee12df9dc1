//! The driver on a real Kafka-protocol broker (`KAFKA_URL`, default
//! `kafka://127.0.0.1:9092`; `scripts/services` starts tansu there): what the
//! conformance suite does not show, checked with a raw rdkafka client beside it.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use messaging_core::notify::{
    Notification, NotificationListener, NotificationListenerBuilder, NotificationResult, Notifier,
};
use messaging_core::testkit::unique;
use messaging_core::{Config, Context, Error, Priority, RpcClient, Target};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};

/// How long anything expected may take.
const LIMIT: Duration = Duration::from_secs(60);

/// The restart test holds it for writing, the others for reading: a broker restart
/// must not fall into another test of this file.
static BROKER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn raw_config() -> ClientConfig {
    let url: messaging_core::TransportUrl = support::broker_url().parse().unwrap();
    let brokers: Vec<String> = url
        .hosts
        .iter()
        .map(|h| {
            format!(
                "{}:{}",
                h.hostname.as_deref().unwrap_or("127.0.0.1"),
                h.port.unwrap_or(9092)
            )
        })
        .collect();
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers.join(","));
    config
}

/// The offset committed by `group` for partition 0 of `topic`.
fn committed(group: &str, topic: &str) -> Option<i64> {
    let consumer: BaseConsumer = raw_config().set("group.id", group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    match got.elements()[0].offset() {
        Offset::Offset(n) => Some(n),
        _ => None,
    }
}

/// Records every payload the listener gets.
fn recording(
    transport: &messaging_core::Transport,
    topic: &str,
) -> (NotificationListenerBuilder, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let listener = NotificationListener::new(transport, [Target::topic(topic)]).on(
        Priority::Info,
        move |n: Notification| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push(n.payload);
                Ok::<_, &str>(NotificationResult::Handled)
            }
        },
    );
    (listener, seen)
}

async fn wait_for(seen: &Arc<Mutex<Vec<Value>>>, what: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let now = seen.lock().unwrap().clone();
        if what(&now) || tokio::time::Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_record_is_skipped_and_committed_and_the_listener_goes_on() {
    support::init_logging();
    let _shared = BROKER.read().await;
    let group = unique("group");
    let transport =
        support::broker_transport(&format!("topic_partitions=1&consumer_group={group}")).await;
    let topic = unique("malformed");
    let (listener, seen) = recording(&transport, &topic);
    let listener = listener.start().await.unwrap();
    let raw: FutureProducer = raw_config().create().unwrap();
    let kafka_topic = format!("{topic}.info");
    for body in [&b"not json"[..], b"{\"oslo.version\": \"2.0\"}", b""] {
        raw.send(
            FutureRecord::<(), [u8]>::to(&kafka_topic).payload(body),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    }
    Notifier::new(&transport, "p")
        .topics([topic.clone()])
        .try_notify(&Context::new(), "ev", Priority::Info, "after")
        .await
        .unwrap();
    let got = wait_for(&seen, |s| !s.is_empty()).await;
    assert_eq!(got, vec![json!("after")]);
    listener.stop().await;
    listener.wait().await.unwrap();
    // All four records are committed: the three bad ones were skipped, not retried.
    assert_eq!(committed(&group, &kafka_topic), Some(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_before_dispatch_commits_what_the_handler_has_not_finished() {
    support::init_logging();
    let _shared = BROKER.read().await;
    let group = unique("group");
    let transport = support::broker_transport(&format!(
        "topic_partitions=1&consumer_group={group}&commit_before_dispatch=true"
    ))
    .await;
    let topic = unique("early");
    let started = Arc::new(tokio::sync::Notify::new());
    let s = started.clone();
    let listener = NotificationListener::new(&transport, [Target::topic(topic.clone())])
        .on(Priority::Info, move |_n: Notification| {
            let s = s.clone();
            async move {
                s.notify_one();
                // A handler that never finishes in time.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<_, &str>(NotificationResult::Handled)
            }
        })
        .start()
        .await
        .unwrap();
    Notifier::new(&transport, "p")
        .topics([topic.clone()])
        .try_notify(&Context::new(), "ev", Priority::Info, 1)
        .await
        .unwrap();
    tokio::time::timeout(LIMIT, started.notified())
        .await
        .expect("handler started");
    let kafka_topic = format!("{topic}.info");
    let deadline = tokio::time::Instant::now() + LIMIT;
    while committed(&group, &kafka_topic) != Some(1) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "offset not committed before the handler finished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_virtual_host_is_appended_on_both_sides() {
    support::init_logging();
    let _shared = BROKER.read().await;
    support::require_broker().await;
    let vhost_url = format!(
        "{}/tenant_a?{}",
        support::broker_url().trim_end_matches('/'),
        support::FETCH_WAIT
    );
    let transport = support::registry()
        .transport(&vhost_url, &Config::default())
        .await
        .unwrap();
    let topic = unique("vhost");
    let (listener, seen) = recording(&transport, &topic);
    let listener = listener.start().await.unwrap();
    Notifier::new(&transport, "p")
        .topics([topic.clone()])
        .try_notify(&Context::new(), "ev", Priority::Info, "v")
        .await
        .unwrap();
    assert_eq!(wait_for(&seen, |s| !s.is_empty()).await, vec![json!("v")]);
    // The record is on `<topic>.info.tenant_a`, where oslo's notifier puts it.
    let raw: BaseConsumer = raw_config().create().unwrap();
    let metadata = raw
        .fetch_metadata(
            Some(&format!("{topic}.info.tenant_a")),
            Duration::from_secs(10),
        )
        .unwrap();
    assert!(metadata.topics()[0].error().is_none(), "vhost topic exists");
    listener.stop().await;
    listener.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeliverable_notification_fails_after_its_retries_naming_the_topic() {
    support::init_logging();
    let _shared = BROKER.read().await;
    // Nothing listens on port 1: every attempt times out after a second.
    let transport = support::registry()
        .transport(
            "kafka://user:s3cret@127.0.0.1:1/?producer_delivery_timeout=1",
            &Config::default(),
        )
        .await
        .unwrap();
    let topic = unique("nowhere");
    let err = Notifier::new(&transport, "p")
        .topics([topic.clone()])
        .retry(messaging_core::Retry::Times(1))
        .try_notify(&Context::new(), "ev", Priority::Info, 1)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::DeliveryFailure(_)), "{err:?}");
    assert!(text.contains(&format!("{topic}.info")), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(!format!("{transport:?}").contains("s3cret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_topics_are_created_for_a_server_and_a_call_to_nobody_is_undeliverable() {
    support::init_logging();
    let _shared = BROKER.read().await;
    let transport = support::broker_transport("").await;
    let topic = unique("rpc");
    let client = RpcClient::new(&transport, Target::topic(topic.clone()))
        .timeout(Duration::from_secs(2))
        .at_least_once(true);
    let err = client
        .call::<_, Value>(&Context::new(), "echo", json!({}))
        .await
        .unwrap_err();
    match err {
        Error::Undeliverable { routing_key, .. } => {
            assert_eq!(routing_key, format!("oslo.rpc.openstack.{topic}"))
        }
        other => panic!("expected Undeliverable, got {other:?}"),
    }
    let endpoint = messaging_core::Endpoint::new()
        .method("echo", |_c: Context, v: Value| async move {
            Ok::<_, messaging_core::RemoteError>(v)
        });
    let server =
        messaging_core::RpcServer::new(&transport, Target::topic(topic.clone()).server("h1"))
            .endpoint(endpoint)
            .start()
            .await
            .unwrap();
    let raw: BaseConsumer = raw_config().create().unwrap();
    for name in [
        format!("oslo.rpc.openstack.{topic}"),
        format!("oslo.rpc.openstack.{topic}.h1"),
        format!("oslo.fanout.openstack.{topic}"),
    ] {
        let metadata = raw
            .fetch_metadata(Some(&name), Duration::from_secs(10))
            .unwrap();
        assert!(metadata.topics()[0].error().is_none(), "{name} exists");
        assert_eq!(metadata.topics()[0].partitions().len(), 4, "{name}");
    }
    let got: Value = client
        .call(&Context::new(), "echo", json!({"x": 1}))
        .await
        .unwrap();
    assert_eq!(got, json!({"x": 1}));
    server.stop().await;
    server.wait().await.unwrap();
}

/// A broker restart in the middle of a notification stream: every notification sent
/// (with the default retry) reaches the listener, some perhaps twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_during_a_notification_stream_loses_nothing() {
    support::init_logging();
    let _exclusive = BROKER.write().await;
    let transport = support::broker_transport(&format!(
        "consumer_group={}&producer_delivery_timeout=10",
        unique("group")
    ))
    .await;
    let topic = unique("restart");
    let (listener, seen) = recording(&transport, &topic);
    let listener = listener.start().await.unwrap();
    const COUNT: i64 = 300;
    let notifier = Notifier::new(&transport, "p").topics([topic.clone()]);
    let sender = tokio::spawn(async move {
        for i in 0..COUNT {
            notifier
                .try_notify(&Context::new(), "ev", Priority::Info, i)
                .await
                .expect("every notification is delivered in the end");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    // Restart once a third is through.
    wait_for(&seen, |s| s.len() as i64 >= COUNT / 3).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/services");
    let restart = tokio::process::Command::new(script)
        .arg("kafka-restart")
        .output()
        .await
        .expect("scripts/services runs");
    assert!(
        restart.status.success(),
        "scripts/services kafka-restart failed: {}",
        String::from_utf8_lossy(&restart.stderr)
    );
    tokio::time::timeout(Duration::from_secs(180), sender)
        .await
        .expect("the stream ends")
        .expect("sender task");
    let got = wait_for(&seen, |s| {
        s.iter()
            .filter_map(Value::as_i64)
            .collect::<BTreeSet<_>>()
            .len() as i64
            == COUNT
    })
    .await;
    let distinct: BTreeSet<i64> = got.iter().filter_map(Value::as_i64).collect();
    let missing: Vec<i64> = (0..COUNT).filter(|i| !distinct.contains(i)).collect();
    assert!(missing.is_empty(), "lost across the restart: {missing:?}");
    listener.stop().await;
    listener.wait().await.unwrap();
}
