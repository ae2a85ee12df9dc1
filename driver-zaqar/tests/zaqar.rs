//! The driver on a real Zaqar server beyond the conformance suite: malformed messages,
//! failures and their kinds, secrets, memberships (also when Zaqar hangs).

mod support;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use messaging_core::notify::Notifier;
use messaging_core::testkit::errors::assert_secret_hidden;
use messaging_core::testkit::unique;
use messaging_core::{
    Config, Context, Endpoint, Error, ErrorKind, Priority, RemoteError, Retry, RpcClient,
    RpcServer, Target,
};
use serde_json::{Value, json};
use tokio::sync::watch;

fn raw(value: Value) -> Box<serde_json::value::RawValue> {
    serde_json::value::to_raw_value(&value).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_notifications_are_deleted_and_the_listener_goes_on() {
    let project = unique("malformed");
    let transport = support::transport(&project, support::TEST_PACING).await;
    let topic = unique("events").replace('_', "-");
    let queue = driver_zaqar::naming::notification_queue(&format!("{topic}.info"), None);
    let zaqar = support::client(&support::endpoint(), &project);
    // Not an oslo message, an envelope around garbage, and a bare string.
    for body in [
        json!({"garbage": 1}),
        json!({"oslo.version": "2.0", "oslo.message": "{not json"}),
        json!("text"),
    ] {
        zaqar
            .post(&queue, &[&*raw(body)], 300, Retry::Times(0))
            .await
            .unwrap();
    }
    let (listener, seen) = support::listen(&transport, &topic).await;
    Notifier::new(&transport, "p")
        .topics([topic.clone()])
        .try_notify(&Context::new(), "after", Priority::Info, json!(1))
        .await
        .unwrap();
    assert_eq!(
        support::wait_for(&seen, 1).await,
        [("after".to_string(), json!(1))]
    );
    listener.stop().await;
    listener.wait().await.unwrap();
    // Nothing is left: the malformed ones were deleted, not released.
    let left = zaqar.claim(&queue, 20, 60, 60).await.unwrap();
    assert!(left.is_none(), "left in the queue: {left:?}");
}

/// A transport in a new project, a topic, and a server `s1` there with an `add` method.
async fn adder_server(project: &str) -> (messaging_core::Transport, String, RpcServer) {
    let transport = support::transport(project, support::TEST_PACING).await;
    let topic = unique("calc").replace('_', "-");
    let adder = Endpoint::new().method(
        "add",
        |_ctx: Context, args: serde_json::Map<String, Value>| async move {
            Ok::<_, RemoteError>(args["a"].as_i64().unwrap_or(0) + args["b"].as_i64().unwrap_or(0))
        },
    );
    let server = RpcServer::new(&transport, Target::topic(topic.clone()).server("s1"))
        .endpoint(adder)
        .start()
        .await
        .unwrap();
    (transport, topic, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_is_dropped_and_the_server_goes_on() {
    let project = unique("badrequest");
    let (transport, topic, server) = adder_server(&project).await;
    let queues = driver_zaqar::naming::RpcQueues::new("openstack", &topic, None);
    support::client(&support::endpoint(), &project)
        .post(
            &queues.shared,
            &[&*raw(json!({"no": "method"}))],
            300,
            Retry::Times(0),
        )
        .await
        .unwrap();
    let sum: i64 = RpcClient::new(&transport, Target::topic(topic.clone()))
        .timeout(Duration::from_secs(10))
        .call(&Context::new(), "add", json!({"a": 2, "b": 3}))
        .await
        .unwrap();
    assert_eq!(sum, 5);
    server.stop().await;
    server.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_leaves_its_membership_and_at_least_once_is_refused() {
    let project = unique("membership");
    let (transport, topic, server) = adder_server(&project).await;
    let client = RpcClient::new(&transport, Target::topic(topic.clone()))
        .timeout(Duration::from_secs(10))
        .at_least_once(true);
    let sum: i64 = client
        .call(&Context::new(), "add", json!({"a": 1, "b": 1}))
        .await
        .unwrap();
    assert_eq!(sum, 2);
    server.stop().await;
    server.wait().await.unwrap();
    let err = client
        .cast(&Context::new(), "add", json!({"a": 1, "b": 1}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Undeliverable { .. }), "{err:?}");
}

/// Counts the events whose message contains a text.
struct Said(&'static str, Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Said {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message<'a>(&'a str, bool);
        impl tracing::field::Visit for Message<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
                if field.name() == "message" {
                    self.1 |= format!("{value:?}").contains(self.0);
                }
            }
        }
        let mut message = Message(self.0, false);
        event.record(&mut message);
        if message.1 {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A TCP relay to the test server that, once `freeze` turns true, takes connections
/// and requests but never answers, like a Zaqar that hangs; returns its port.
async fn freezable_relay(freeze: watch::Receiver<bool>) -> u16 {
    let upstream = support::endpoint().replacen("http://", "", 1);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let mut frozen = freeze.clone();
            tokio::spawn(async move {
                if !*frozen.borrow()
                    && let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await
                {
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => return,
                        _ = frozen.wait_for(|f| *f) => {}
                    }
                }
                // Frozen: the connection stays open, unanswered.
                std::future::pending::<()>().await;
                drop(inbound);
            });
        }
    });
    port
}

/// A server whose Zaqar stops answering still stops: its close waits for its
/// membership's deletion one request's time (`request_timeout`), not every retry,
/// and says it gave up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stops_within_a_request_timeout_when_zaqar_hangs_and_says_so() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, filter::Targets};

    let gave_up = Arc::new(AtomicUsize::new(0));
    tracing_subscriber::registry()
        .with(
            Said(
                "did not confirm that this listener's memberships are deleted",
                gave_up.clone(),
            )
            .with_filter(Targets::new().with_target("driver_zaqar", tracing::Level::WARN)),
        )
        .try_init()
        .expect("the test's own tracing subscriber");
    support::require_server().await;
    let (freeze, frozen) = watch::channel(false);
    let port = freezable_relay(frozen).await;
    let url = format!(
        "zaqar://127.0.0.1:{port}/{}?{}&request_timeout=0.5",
        unique("hanging"),
        support::TEST_PACING
    );
    let transport = support::registry()
        .transport(&url, &Config::default())
        .await
        .unwrap();
    let topic = unique("calc").replace('_', "-");
    let server = RpcServer::new(&transport, Target::topic(topic).server("s1"))
        .endpoint(support::adder())
        .start()
        .await
        .unwrap();
    freeze.send(true).unwrap();
    server.stop().await;
    // Four attempts of half a second and their backoff without the limit; the limit
    // is half a second, and so are the polls under way.
    tokio::time::timeout(Duration::from_secs(20), server.wait())
        .await
        .expect("the server stops although Zaqar does not answer")
        .unwrap();
    assert_eq!(
        gave_up.load(Ordering::SeqCst),
        1,
        "the server says it gave up"
    );
}

#[tokio::test]
async fn an_unreachable_server_fails_after_the_retries_as_unreachable() {
    let transport = support::registry()
        .transport(
            "zaqar://127.0.0.1:1/p?retry_interval=0.01&retry_interval_max=0.02",
            &Config::default(),
        )
        .await
        .unwrap();
    let err = Notifier::new(&transport, "p")
        .topics(["t"])
        .retry(Retry::Times(2))
        .try_notify(&Context::new(), "e", Priority::Info, json!(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DeliveryFailure(_)), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err:?}");
    assert!(err.to_string().contains("3 attempts"), "{err}");
}

#[tokio::test]
async fn a_refused_request_is_not_tried_again_and_says_why() {
    let project = unique("refused");
    let transport = support::transport(&project, "").await;
    // Over Zaqar's 256 KiB limit per post.
    let big = "x".repeat(300 * 1024);
    let err = Notifier::new(&transport, "p")
        .topics(["big"])
        .try_notify(&Context::new(), "e", Priority::Info, json!(big))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "not retried: {err:?}");
    assert_eq!(err.kind(), ErrorKind::RefusedByBroker, "{err:?}");
    assert!(
        err.to_string()
            .contains("POST /v2/queues/big__info/messages"),
        "{err}"
    );
}

#[tokio::test]
async fn keystone_passwords_stay_hidden() {
    let secret = "hunter2-zaqar-secret";
    let url = format!(
        "zaqar://svc:{secret}@127.0.0.1:8888/?auth_url=http://127.0.0.1:1/v3&project_name=svc&retry_interval=0.01"
    );
    let transport = support::registry()
        .transport(&url, &Config::default())
        .await
        .unwrap();
    let err = Notifier::new(&transport, "p")
        .topics(["t"])
        .retry(Retry::Times(0))
        .try_notify(&Context::new(), "e", Priority::Info, json!(1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Keystone"), "{err}");
    assert_secret_hidden(&err, secret);
    assert!(!format!("{transport:?}").contains(secret));
}
