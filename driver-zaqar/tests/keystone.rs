//! The driver on a Zaqar behind a real Keystone (`scripts/services zaqar-keystone`:
//! Keystone 30 on 127.0.0.1:5000, a Zaqar with `auth_strategy = keystone` on
//! 127.0.0.1:8889): Keystone v3 password authentication end to end, refusals by Keystone
//! and by Zaqar, and tokens renewed before they expire (that Keystone's live 70 s, so the
//! driver renews them after 10 s).
//!
//! Every test logs in as the same user, into the same project (`zaqar-test`), so each
//! works on topics of its own.

mod support;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use driver_zaqar::client::{ClientSettings, ZaqarClient};
use driver_zaqar::keystone::{Keystone, PasswordAuth};
use messaging_core::notify::Notifier;
use messaging_core::testkit::errors::assert_secret_hidden;
use messaging_core::testkit::unique;
use messaging_core::{
    Config, Context, ErrorKind, Priority, Retry, RpcClient, RpcServer, Target, Transport,
};
use serde_json::json;

const KEYSTONE: &str = "http://127.0.0.1:5000/v3";
const ZAQAR: &str = "http://127.0.0.1:8889";
const USER: &str = "zaqar-test";
const PASSWORD: &str = "zaqar-test-secret";
const PROJECT: &str = "zaqar-test";

/// The test user's transport URL, with `password`.
fn url_with(password: &str) -> String {
    format!(
        "zaqar://{USER}:{password}@127.0.0.1:8889/?auth_url={KEYSTONE}&project_name={PROJECT}&{}",
        support::TEST_PACING
    )
}

/// Fails the test, naming the script that starts them, when Keystone or the Zaqar
/// behind it does not answer HTTP.
async fn require_services() {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for (what, url) in [
        ("Keystone", KEYSTONE.to_string()),
        ("the Zaqar behind Keystone", format!("{ZAQAR}/")),
    ] {
        if let Err(e) = http.get(&url).send().await {
            panic!(
                "{what} does not answer GET {url} ({e}): run scripts/services zaqar-keystone \
                 (it installs and starts Keystone on 127.0.0.1:5000 and a Zaqar using it on \
                 127.0.0.1:8889)"
            );
        }
    }
}

/// A transport of the test user.
async fn transport() -> Transport {
    require_services().await;
    support::init_logging();
    support::registry()
        .transport(&url_with(PASSWORD), &Config::default())
        .await
        .expect("transport")
}

/// A topic of the test's own (with `-` rather than `_`, which the driver escapes in
/// queue names).
fn topic(prefix: &str) -> String {
    unique(prefix).replace('_', "-")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_go_through_a_zaqar_behind_keystone() {
    let (listening, notifying) = (transport().await, transport().await);
    let topic = topic("ks-events");
    let (listener, seen) = support::listen(&listening, &topic).await;
    let notifier = Notifier::new(&notifying, "keystone-test").topics([topic.clone()]);
    for i in 0..3 {
        notifier
            .try_notify(&Context::new(), "compute.start", Priority::Info, json!(i))
            .await
            .unwrap();
    }
    let got = support::wait_for(&seen, 3).await;
    let mut payloads: Vec<_> = got.iter().map(|(_, p)| p.clone()).collect();
    payloads.sort_by_key(|p| p.as_i64());
    assert_eq!(payloads, [json!(0), json!(1), json!(2)], "{got:?}");
    assert!(got.iter().all(|(e, _)| e == "compute.start"), "{got:?}");
    listener.stop().await;
    listener.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_calls_go_through_a_zaqar_behind_keystone() {
    let (serving, calling) = (transport().await, transport().await);
    let topic = topic("ks-calc");
    let server = RpcServer::new(&serving, Target::topic(topic.clone()).server("s1"))
        .endpoint(support::adder())
        .start()
        .await
        .unwrap();
    let client =
        RpcClient::new(&calling, Target::topic(topic.clone())).timeout(Duration::from_secs(20));
    let sum: i64 = client
        .call(&Context::new(), "add", json!({"a": 2, "b": 40}))
        .await
        .unwrap();
    assert_eq!(sum, 42);
    // To the server by name, then a cast.
    let sum: i64 = RpcClient::new(&calling, Target::topic(topic.clone()).server("s1"))
        .timeout(Duration::from_secs(20))
        .call(&Context::new(), "add", json!({"a": 1, "b": 2}))
        .await
        .unwrap();
    assert_eq!(sum, 3);
    client
        .cast(&Context::new(), "add", json!({"a": 0, "b": 0}))
        .await
        .unwrap();
    server.stop().await;
    server.wait().await.unwrap();
}

/// The error of a notification that is refused: at once, not tried again (the
/// notifier's default retries without end).
async fn refused_notification(transport: &Transport, prefix: &str) -> messaging_core::Error {
    let context = Context::new();
    let notifier = Notifier::new(transport, "p").topics([topic(prefix)]);
    let notifying = notifier.try_notify(&context, "e", Priority::Info, json!(1));
    tokio::time::timeout(Duration::from_secs(20), notifying)
        .await
        .expect("a refusal is not tried again")
        .expect_err("a refusal")
}

#[tokio::test]
async fn a_wrong_password_is_refused_by_keystone_and_stays_hidden() {
    require_services().await;
    let secret = "not-the-zaqar-test-secret";
    let transport = support::registry()
        .transport(&url_with(secret), &Config::default())
        .await
        .unwrap();
    let err = refused_notification(&transport, "ks-refused").await;
    assert_eq!(err.kind(), ErrorKind::RefusedCredentials, "{err:?}");
    let text = err.to_string();
    assert!(text.contains("Keystone"), "{text}");
    assert!(text.contains("401"), "{text}");
    assert_secret_hidden(&err, secret);
    assert!(!format!("{transport:?}").contains(secret));
}

#[tokio::test]
async fn zaqar_refuses_requests_without_a_token() {
    require_services().await;
    let transport = support::registry()
        .transport(
            &format!("zaqar://127.0.0.1:8889/{}", unique("someproject")),
            &Config::default(),
        )
        .await
        .unwrap();
    let err = refused_notification(&transport, "ks-anonymous").await;
    assert_eq!(err.kind(), ErrorKind::RefusedCredentials, "{err:?}");
    assert!(err.to_string().contains("401"), "{err}");
}

/// Counts the driver's "Keystone issued a token" events.
struct IssuedTokens(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for IssuedTokens {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(bool);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
                if field.name() == "message" {
                    self.0 |= format!("{value:?}").contains("Keystone issued a token");
                }
            }
        }
        let mut message = Message(false);
        event.record(&mut message);
        if message.0 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// With Keystone's 70-second tokens the driver renews after 10 s (a minute early):
/// a token of its own changes then, requests made with it go on, and so do a listener,
/// a server and their clients that renew theirs meanwhile.
/// One notification (the `n`th), one call and one post of the client's own.
async fn one_of_each(
    notifier: &Notifier,
    rpc: &RpcClient,
    client: &ZaqarClient,
    queue: &str,
    n: i64,
) {
    notifier
        .try_notify(&Context::new(), "tick", Priority::Info, json!(n - 1))
        .await
        .unwrap();
    let sum: i64 = rpc
        .call(&Context::new(), "add", json!({"a": n, "b": 1}))
        .await
        .unwrap();
    assert_eq!(sum, n + 1);
    let body = serde_json::value::to_raw_value(&json!({"n": n})).unwrap();
    client
        .post(queue, &[&*body], 60, Retry::Times(0))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_renewed_before_they_expire_and_everything_goes_on() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, filter::Targets};

    let issued = Arc::new(AtomicUsize::new(0));
    tracing_subscriber::registry()
        .with(IssuedTokens(issued.clone()).with_filter(
            Targets::new().with_target("driver_zaqar::keystone", tracing::Level::DEBUG),
        ))
        .try_init()
        .expect("the test's own tracing subscriber");

    let transport = transport().await;
    let topic = topic("ks-renewal");
    let (listener, seen) = support::listen(&transport, &topic).await;
    let server = RpcServer::new(&transport, Target::topic(topic.clone()).server("s1"))
        .endpoint(support::adder())
        .start()
        .await
        .unwrap();
    let notifier = Notifier::new(&transport, "keystone-test").topics([topic.clone()]);
    let rpc =
        RpcClient::new(&transport, Target::topic(topic.clone())).timeout(Duration::from_secs(20));

    // A Keystone and a client of the test's own, to see the token change.
    let http = reqwest::Client::new();
    let keystone = Arc::new(Keystone::password(PasswordAuth {
        auth_url: KEYSTONE.into(),
        username: USER.into(),
        password: PASSWORD.into(),
        project_name: PROJECT.into(),
        ..PasswordAuth::default()
    }));
    let client = ZaqarClient::new(ClientSettings {
        endpoint: ZAQAR.into(),
        project: None,
        client_id: uuid::Uuid::new_v4(),
        keystone: Some(keystone.clone()),
        ca_pem: None,
        insecure: false,
        request_timeout: Duration::from_secs(10),
        backoff: (Duration::from_millis(50), Duration::from_millis(500)),
    })
    .unwrap();
    let queue = format!("{topic}-own");

    let start = Instant::now();
    let first = keystone.token(&http).await.unwrap();
    let mut sent = 0;
    let mut renewed = None;
    // Keystone's 70-second tokens are renewed after 10 s; 40 s leaves room for a slow
    // Keystone, and says so when tokens live longer (another configuration).
    while start.elapsed() < Duration::from_secs(40) {
        sent += 1;
        one_of_each(&notifier, &rpc, &client, &queue, sent).await;
        let token = keystone.token(&http).await.unwrap();
        if token != first {
            renewed = Some(start.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let renewed = renewed.unwrap_or_else(|| {
        panic!(
            "no new token after {:?}: Keystone's tokens live longer than scripts/services \
             keystone configures (70 s)?",
            start.elapsed()
        )
    });
    // The listener's and the server's tokens were issued before ours: renewed too by now.
    // A little more traffic with the new ones.
    for _ in 0..3 {
        sent += 1;
        one_of_each(&notifier, &rpc, &client, &queue, sent).await;
    }
    let got = support::wait_for(&seen, sent as usize).await;
    assert_eq!(got.len(), sent as usize, "{got:?}");
    let claimed = client
        .claim(&queue, 20, 60, 60)
        .await
        .unwrap()
        .expect("our posts");
    assert!(!claimed.messages.is_empty());
    // Two tokens of ours, and at least two of the transport's.
    let issued = issued.load(Ordering::SeqCst);
    assert!(
        issued >= 4,
        "{issued} tokens issued in {renewed:?}: the transport did not renew its own"
    );
    listener.stop().await;
    listener.wait().await.unwrap();
    server.stop().await;
    server.wait().await.unwrap();
    client.delete_queue(&queue, Retry::Times(0)).await.unwrap();
}
