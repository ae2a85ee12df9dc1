//! oslo.messaging's notification tests (`tests/notify/test_notifier.py`,
//! `test_dispatcher.py`, `test_listener.py`, including TestRoutingNotifier and
//! TestDispatcherFilter) against `messaging_core::notify`, end to end on `memory://`
//! where oslo goes through a transport.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use messaging_core::memory::MemoryDriver;
use messaging_core::notify::sink::mask_passwords;
use messaging_core::notify::{
    Metadata, Notification, NotificationEndpoint, NotificationFilter, NotificationListener,
    NotificationResult, Notifier, Priority, RoutingConfig, Sink, TestNotifications,
};
use messaging_core::wire::request::new_id;
use messaging_core::wire::{ContextPacking, NotificationMessage, envelope};
use messaging_core::{
    Config, Context, DriverRegistry, Error, Result, Retry, Serializer, Target, Transport,
};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

const EVENT: &str = "test.notify";

fn vhost(prefix: &str) -> String {
    format!("{prefix}_{}", new_id())
}

async fn memory_transport_on(vhost: &str, config: &Config) -> Transport {
    DriverRegistry::with_memory()
        .transport(&format!("memory:///{vhost}"), config)
        .await
        .unwrap()
}

async fn memory_transport(config: &Config) -> Transport {
    memory_transport_on(&vhost("notify"), config).await
}

fn is_dashed_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

fn is_python_timestamp(s: &str) -> bool {
    regex::Regex::new(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{6})?$")
        .unwrap()
        .is_match(s)
}

/// Calls the notifier method named after the priority (`notifier.<priority>(...)`).
async fn notify_at(
    notifier: &Notifier,
    priority: Priority,
    ctx: &Context,
    event_type: &str,
    payload: Value,
) {
    match priority {
        Priority::Audit => notifier.audit(ctx, event_type, payload).await,
        Priority::Debug => notifier.debug(ctx, event_type, payload).await,
        Priority::Info => notifier.info(ctx, event_type, payload).await,
        Priority::Warn => notifier.warn(ctx, event_type, payload).await,
        Priority::Error => notifier.error(ctx, event_type, payload).await,
        Priority::Critical => notifier.critical(ctx, event_type, payload).await,
        Priority::Sample => notifier.sample(ctx, event_type, payload).await,
    }
}

fn bob() -> Context {
    Context::new().with("user_name", "bob")
}

// ---------------------------------------------------------------------------------
// TestMessagingNotifier through the `test` sink: priority x publisher id x retry.
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum PublisherId {
    /// ctor 'test'
    CtorPubId,
    /// prepare 'test.localhost' (no publisher id given to the constructor)
    PrepPubId,
    /// ctor 'test' + prepare 'test.localhost'
    Override,
}

#[derive(Clone, Copy, Debug)]
enum RetryRow {
    Unconfigured,
    None,
    Zero,
    Five,
}

#[tokio::test]
async fn messaging_notifier_matrix_through_test_sink() {
    let transport = memory_transport(&Config::default()).await;
    for priority in Priority::ALL {
        for publisher in [
            PublisherId::CtorPubId,
            PublisherId::PrepPubId,
            PublisherId::Override,
        ] {
            for retry in [
                RetryRow::Unconfigured,
                RetryRow::None,
                RetryRow::Zero,
                RetryRow::Five,
            ] {
                let scenario = format!("{priority:?},{publisher:?},{retry:?}");
                let record = TestNotifications::new();
                let ctor = match publisher {
                    PublisherId::PrepPubId => "",
                    _ => "test",
                };
                let mut notifier = Notifier::new(&transport, ctor)
                    .sinks([Sink::Test(record.clone())])
                    .topics(["notifications"]);
                let prepared_retry = match retry {
                    RetryRow::Unconfigured => None,
                    RetryRow::None => Some(Retry::from_oslo(None)),
                    RetryRow::Zero => Some(Retry::from_oslo(Some(0))),
                    RetryRow::Five => Some(Retry::from_oslo(Some(5))),
                };
                if prepared_retry.is_some() || !matches!(publisher, PublisherId::CtorPubId) {
                    notifier = notifier.prepare();
                    if let Some(r) = prepared_retry {
                        notifier = notifier.retry(r);
                    }
                    if !matches!(publisher, PublisherId::CtorPubId) {
                        notifier = notifier.publisher_id("test.localhost");
                    }
                }
                assert!(notifier.is_enabled(), "{scenario}");
                notify_at(&notifier, priority, &bob(), EVENT, json!({"foo": "bar"})).await;

                let sent = record.all();
                assert_eq!(sent.len(), 1, "{scenario}");
                let sent = &sent[0];
                let m = &sent.message;
                let expected_publisher = match publisher {
                    PublisherId::CtorPubId => "test",
                    _ => "test.localhost",
                };
                assert!(
                    is_dashed_uuid(&m.message_id),
                    "{scenario}: {}",
                    m.message_id
                );
                assert!(
                    is_python_timestamp(&m.timestamp),
                    "{scenario}: {}",
                    m.timestamp
                );
                assert_eq!(m.publisher_id, expected_publisher, "{scenario}");
                assert_eq!(m.event_type, EVENT, "{scenario}");
                assert_eq!(m.priority, priority.as_upper(), "{scenario}");
                assert_eq!(m.payload, json!({"foo": "bar"}), "{scenario}");
                assert_eq!(m.context, bob(), "{scenario}");
                assert_eq!(sent.priority, priority, "{scenario}");
                let expected_retry = match retry {
                    RetryRow::Unconfigured | RetryRow::None => Retry::Forever,
                    RetryRow::Zero => Retry::Times(0),
                    RetryRow::Five => Retry::Times(5),
                };
                assert_eq!(sent.retry, expected_retry, "{scenario}");
            }
        }
    }
}

#[test]
fn priority_names_upper_and_lower() {
    let names: Vec<(&str, &str)> = Priority::ALL
        .iter()
        .map(|p| (p.as_str(), p.as_upper()))
        .collect();
    assert_eq!(
        names,
        [
            ("audit", "AUDIT"),
            ("debug", "DEBUG"),
            ("info", "INFO"),
            ("warn", "WARN"),
            ("error", "ERROR"),
            ("critical", "CRITICAL"),
            ("sample", "SAMPLE")
        ]
    );
    assert_eq!("warning".parse::<Priority>().unwrap(), Priority::Warn);
    assert_eq!("INFO".parse::<Priority>().unwrap(), Priority::Info);
    assert!(matches!(
        "what???".parse::<Priority>(),
        Err(Error::Malformed(_))
    ));
}

#[tokio::test]
async fn warning_is_an_alias_of_warn() {
    let transport = memory_transport(&Config::default()).await;
    let record = TestNotifications::new();
    let notifier = Notifier::new(&transport, "test").sinks([Sink::Test(record.clone())]);
    notifier.warning(&Context::new(), EVENT, json!({})).await;
    let sent = record.take();
    assert_eq!(
        (sent[0].message.priority.as_str(), sent[0].priority),
        ("WARN", Priority::Warn)
    );
}

// ---------------------------------------------------------------------------------
// TestMessagingNotifier through the transport: messaging (v1) x messagingv2 x topics.
// ---------------------------------------------------------------------------------

const CANDIDATE_TOPICS: [&str; 3] = ["notifications", "foo", "bar"];

/// Listens on every candidate topic at `priority`; each arrival is reported with its topic.
async fn listen_on_candidates(
    transport: &Transport,
    priority: Priority,
) -> (
    Vec<NotificationListener>,
    mpsc::UnboundedReceiver<(&'static str, Notification)>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut listeners = Vec::new();
    for topic in CANDIDATE_TOPICS {
        let tx = tx.clone();
        let listener = NotificationListener::new(transport, [Target::topic(topic)])
            .on(priority, move |n: Notification| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((topic, n));
                }
            })
            .start()
            .await
            .unwrap();
        listeners.push(listener);
    }
    (listeners, rx)
}

/// Receives exactly `n` items, then checks nothing more arrives for a while.
async fn receive_exactly<T>(
    rx: &mut mpsc::UnboundedReceiver<T>,
    n: usize,
    context: &str,
) -> Vec<T> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(item)) => got.push(item),
            _ => panic!("{context}: only {} of {n} arrived", got.len()),
        }
    }
    if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
        panic!("{context}: more than {n} arrived");
    }
    got
}

async fn check_send_count(v1: bool, v2: bool, topics: &'static [&'static str], priority: Priority) {
    let scenario = format!("v1={v1},v2={v2},topics={topics:?},{priority:?}");
    let transport = memory_transport(&Config::default()).await;
    let (listeners, mut rx) = listen_on_candidates(&transport, priority).await;
    let mut sinks = Vec::new();
    if v1 {
        sinks.push(Sink::Messaging);
    }
    if v2 {
        sinks.push(Sink::MessagingV2);
    }
    let notifier = Notifier::new(&transport, "test")
        .sinks(sinks)
        .topics(topics.iter().copied());
    assert!(
        notifier.is_enabled(),
        "{scenario}: enabled, even with no driver"
    );
    notify_at(&notifier, priority, &bob(), EVENT, json!({"foo": "bar"})).await;

    let versions = usize::from(v1) + usize::from(v2);
    let got = receive_exactly(&mut rx, versions * topics.len(), &scenario).await;
    let mut per_topic: BTreeMap<&str, usize> = BTreeMap::new();
    for (topic, _) in &got {
        *per_topic.entry(topic).or_default() += 1;
    }
    let expected: BTreeMap<&str, usize> = topics
        .iter()
        .filter(|_| versions > 0)
        .map(|t| (*t, versions))
        .collect();
    assert_eq!(per_topic, expected, "{scenario}");
    // One message, built once, for every send.
    if let Some((_, first)) = got.first() {
        for (_, n) in &got {
            assert_eq!(n, first, "{scenario}: every send carries the same message");
        }
        assert!(is_dashed_uuid(&first.metadata.message_id), "{scenario}");
        assert_eq!(
            (
                first.publisher_id.as_str(),
                first.event_type.as_str(),
                &first.payload,
                first.priority
            ),
            ("test", EVENT, &json!({"foo": "bar"}), priority),
            "{scenario}"
        );
        assert_eq!(first.context, bob(), "{scenario}");
    }
    for listener in listeners {
        listener.stop().await;
        listener.wait().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messaging_notifier_send_counts() {
    const NO_TOPICS: &[&str] = &[];
    const SINGLE_TOPIC: &[&str] = &["notifications"];
    const MULTIPLE_TOPIC2: &[&str] = &["foo", "bar"];
    let mut scenarios = Vec::new();
    for (v1, v2) in [(true, true), (true, false), (false, true), (false, false)] {
        for topics in [NO_TOPICS, SINGLE_TOPIC, MULTIPLE_TOPIC2] {
            for priority in Priority::ALL {
                scenarios.push(check_send_count(v1, v2, topics, priority));
            }
        }
    }
    futures::future::join_all(scenarios).await;
}

// ---------------------------------------------------------------------------------
// is_enabled, topics and retry from the configuration, the serializer.
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn is_enabled_rules() {
    let transport = memory_transport(&Config::default()).await;
    let base = Notifier::new(&transport, "test");
    assert!(base.is_enabled());
    assert!(
        base.clone().sinks([]).is_enabled(),
        "no driver is still enabled"
    );
    assert!(
        !base.clone().sinks([Sink::Noop]).is_enabled(),
        "TestNoOpNotifier"
    );
    assert!(base.clone().sinks([Sink::Noop, Sink::Log]).is_enabled());
    assert!(base.clone().sinks([Sink::Log]).is_enabled());

    let mut config = Config::default();
    config.notifications.driver = vec!["noop".into()];
    let transport = memory_transport(&config).await;
    assert!(
        !Notifier::from_config(&transport, "test")
            .unwrap()
            .is_enabled()
    );
    config.notifications.driver = vec![];
    let transport = memory_transport(&config).await;
    assert!(
        Notifier::from_config(&transport, "test")
            .unwrap()
            .is_enabled()
    );
}

#[tokio::test]
async fn noop_sends_nothing() {
    let transport = memory_transport(&Config::default()).await;
    let (listeners, mut rx) = listen_on_candidates(&transport, Priority::Info).await;
    Notifier::new(&transport, "test")
        .sinks([Sink::Noop])
        .info(&bob(), EVENT, json!({}))
        .await;
    receive_exactly(&mut rx, 0, "noop").await;
    for l in listeners {
        l.stop().await;
    }
}

async fn check_topics_reach(transport: &Transport, notifier: Notifier) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut listeners = Vec::new();
    for topic in ["topic1", "topic2"] {
        let tx = tx.clone();
        listeners.push(
            NotificationListener::new(transport, [Target::topic(topic)])
                .on(Priority::Info, move |_: Notification| {
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send(topic);
                    }
                })
                .start()
                .await
                .unwrap(),
        );
    }
    notifier.info(&Context::new(), EVENT, json!({})).await;
    let mut got = receive_exactly(&mut rx, 2, "topics").await;
    got.sort_unstable();
    assert_eq!(got, ["topic1", "topic2"]);
    for l in listeners {
        l.stop().await;
    }
}

#[tokio::test]
async fn topics_from_config() {
    let mut config = Config::default();
    config.notifications.topics = vec!["topic1".into(), "topic2".into()];
    let transport = memory_transport(&config).await;
    check_topics_reach(&transport, Notifier::new(&transport, "test")).await;
}

#[tokio::test]
async fn topics_from_kwargs() {
    let transport = memory_transport(&Config::default()).await;
    check_topics_reach(
        &transport,
        Notifier::new(&transport, "test").topics(["topic1", "topic2"]),
    )
    .await;
}

#[tokio::test]
async fn retry_config() {
    let mut config = Config::default();
    config.notifications.retry = 3;
    let transport = memory_transport(&config).await;
    let record = TestNotifications::new();
    Notifier::new(&transport, "test")
        .sinks([Sink::Test(record.clone())])
        .info(&bob(), EVENT, json!({}))
        .await;
    assert_eq!(record.take()[0].retry, Retry::Times(3));
}

#[tokio::test]
async fn notifier_retry_config() {
    let mut config = Config::default();
    config.notifications.retry = 3;
    let transport = memory_transport(&config).await;
    let record = TestNotifications::new();
    Notifier::new(&transport, "test")
        .retry(Retry::Times(5))
        .sinks([Sink::Test(record.clone())])
        .info(&bob(), EVENT, json!({}))
        .await;
    assert_eq!(record.take()[0].retry, Retry::Times(5));
}

#[test]
fn retry_default_is_forever() {
    assert_eq!(Config::default().notifications.retry, -1);
    assert_eq!(Retry::from_oslo(Some(-1)), Retry::Forever);
}

/// serialize_context -> {'user_name': 'alice'}; serialize_entity -> 's' + payload.
#[derive(Default)]
struct MockSerializer {
    context_calls: Mutex<Vec<Context>>,
    entity_calls: Mutex<Vec<(Context, Value)>>,
}

impl Serializer for MockSerializer {
    fn serialize_context(&self, ctx: &Context) -> Result<Context> {
        self.context_calls.lock().unwrap().push(ctx.clone());
        Ok(Context::new().with("user_name", "alice"))
    }

    fn serialize_entity(&self, ctx: &Context, entity: Value) -> Result<Value> {
        self.entity_calls
            .lock()
            .unwrap()
            .push((ctx.clone(), entity.clone()));
        Ok(json!(format!("s{}", entity.as_str().unwrap())))
    }
}

#[tokio::test]
async fn serializer() {
    let transport = memory_transport(&Config::default()).await;
    let record = TestNotifications::new();
    let serializer = Arc::new(MockSerializer::default());
    Notifier::new(&transport, "test.localhost")
        .sinks([Sink::Test(record.clone())])
        .topics(["test"])
        .serializer(serializer.clone())
        .info(&bob(), EVENT, "bar")
        .await;
    let sent = record.take();
    assert_eq!(sent.len(), 1);
    let m = &sent[0].message;
    assert_eq!(m.context, Context::new().with("user_name", "alice"));
    assert_eq!(
        (
            m.publisher_id.as_str(),
            m.event_type.as_str(),
            m.priority.as_str(),
            &m.payload
        ),
        ("test.localhost", EVENT, "INFO", &json!("sbar"))
    );
    assert_eq!(
        (sent[0].priority, sent[0].retry),
        (Priority::Info, Retry::Forever)
    );
    assert_eq!(*serializer.context_calls.lock().unwrap(), vec![bob()]);
    assert_eq!(
        *serializer.entity_calls.lock().unwrap(),
        vec![(bob(), json!("bar"))]
    );
}

// ---------------------------------------------------------------------------------
// Context sanitising: credentials never leave in a notification.
// ---------------------------------------------------------------------------------

fn credential_context() -> Context {
    Context::from_value(json!({
        "user_name": "bob",
        "project_id": "demo",
        "auth_token": "gAAAAAB-secret",
        "auth_token_info": {"token": {"expires_at": "2030-01-01"}},
        "service_token": "svc-secret",
        "service_catalog": [{"type": "compute"}],
        "password": "passw0rd"
    }))
    .unwrap()
}

fn sanitised() -> Value {
    json!({
        "user_name": "bob",
        "project_id": "demo",
        "auth_token": null,
        "auth_token_info": null,
        "service_token": null,
        "service_catalog": null,
        "password": null
    })
}

#[tokio::test]
async fn context_credentials_are_removed() {
    let transport = memory_transport(&Config::default()).await;
    let record = TestNotifications::new();
    let ctx = credential_context();
    Notifier::new(&transport, "test")
        .sinks([Sink::Test(record.clone())])
        .info(&ctx, EVENT, json!({}))
        .await;
    assert_eq!(
        Value::Object(record.take()[0].message.context.0.clone()),
        sanitised()
    );
    assert_eq!(
        ctx,
        credential_context(),
        "the caller's context is left alone"
    );
}

#[tokio::test]
async fn context_credentials_do_not_travel() {
    let transport = memory_transport(&Config::default()).await;
    let (listeners, mut rx) = listen_on_candidates(&transport, Priority::Info).await;
    Notifier::new(&transport, "test")
        .info(&credential_context(), EVENT, json!({}))
        .await;
    let got = receive_exactly(&mut rx, 1, "sanitised").await;
    assert_eq!(Value::Object(got[0].1.context.0.clone()), sanitised());
    for l in listeners {
        l.stop().await;
    }
}

// ---------------------------------------------------------------------------------
// TestLogNotifier
// ---------------------------------------------------------------------------------

#[test]
fn mask_passwords_masks_the_password() {
    let masked = mask_passwords(&json!({"password": "passw0rd", "event_type": "foo"}));
    assert_eq!(masked, json!({"password": "***", "event_type": "foo"}));
    assert_eq!(
        masked.to_string(),
        r#"{"password":"***","event_type":"foo"}"#,
        "keys keep their order"
    );
}

#[test]
fn mask_passwords_at_any_depth() {
    let masked = mask_passwords(&json!({
        "payload": {"admin_pass": "x", "nested": [{"auth_token": "y", "name": "vm"}], "size": 1},
        "event_type": "foo"
    }));
    assert_eq!(
        masked,
        json!({
            "payload": {"admin_pass": "***", "nested": [{"auth_token": "***", "name": "vm"}], "size": 1},
            "event_type": "foo"
        })
    );
}

/// One captured `tracing` event: level, target and fields (the message as `message`).
#[derive(Debug, Clone)]
struct Captured {
    level: tracing::Level,
    target: String,
    fields: BTreeMap<String, String>,
}

/// A minimal subscriber recording the events of the thread it is set on.
#[derive(Clone, Default)]
struct Capture {
    events: Arc<Mutex<Vec<Captured>>>,
    next_span: Arc<AtomicU64>,
}

struct FieldVisitor<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut FieldVisitor(&mut fields));
        self.events.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            target: event.metadata().target().to_string(),
            fields,
        });
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

impl Capture {
    fn notification_events(&self) -> Vec<Captured> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.target == "oslo.messaging.notification")
            .cloned()
            .collect()
    }
}

/// `info(ctxt, 'test.notify', 'bar')` with the log driver: one INFO record for the
/// event type whose text is `json.dumps` of the message dict (no context, no
/// `_unique_id`).
#[tokio::test(flavor = "current_thread")]
async fn log_notifier() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let transport = memory_transport(&Config::default()).await;
    let notifier = Notifier::new(&transport, "test.localhost").sinks([Sink::Log]);
    assert!(notifier.is_enabled());
    notifier.info(&credential_context(), EVENT, "bar").await;

    let events = capture.notification_events();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.level, tracing::Level::INFO);
    assert_eq!(event.fields["event_type"], EVENT);
    let text = &event.fields["message"];
    let logged: Value = serde_json::from_str(text).unwrap();
    let id = logged["message_id"].as_str().unwrap();
    let ts = logged["timestamp"].as_str().unwrap();
    assert!(is_dashed_uuid(id) && is_python_timestamp(ts), "{text}");
    assert_eq!(
        *text,
        format!(
            r#"{{"message_id": "{id}", "publisher_id": "test.localhost", "event_type": "test.notify", "priority": "INFO", "payload": "bar", "timestamp": "{ts}"}}"#
        )
    );
}

#[tokio::test(flavor = "current_thread")]
async fn log_notifier_masks_passwords() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let transport = memory_transport(&Config::default()).await;
    Notifier::new(&transport, "test.localhost")
        .sinks([Sink::Log])
        .error(
            &Context::new(),
            "foo",
            json!({"password": "passw0rd", "name": "vm"}),
        )
        .await;
    let events = capture.notification_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].level, tracing::Level::ERROR);
    let text = &events[0].fields["message"];
    assert!(
        text.contains(r#""payload": {"password": "***", "name": "vm"}"#),
        "{text}"
    );
    assert!(!text.contains("passw0rd"), "{text}");
}

/// Python loggers have no `sample` method: nothing is logged, only a warning.
#[tokio::test(flavor = "current_thread")]
async fn log_notifier_sample_priority() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let transport = memory_transport(&Config::default()).await;
    Notifier::new(&transport, "test.localhost")
        .sinks([Sink::Log])
        .sample(&Context::new(), "foo", json!({}))
        .await;
    let events = capture.notification_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].level, tracing::Level::WARN);
    assert_eq!(
        events[0].fields["message"],
        "Unable to log message as notify cannot find a logger with the priority specified sample"
    );
}

// ---------------------------------------------------------------------------------
// test_dispatcher.py (notify): which endpoints are called, requeue stops dispatch.
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// returns 'handled'
    Handled,
    /// returns None
    NoReturn,
    /// returns 'requeue' on its first call, 'handled' after
    RequeueOnce,
    /// raises on its first call, returns 'handled' after
    FailOnce,
}

type Seen = mpsc::UnboundedSender<(usize, Priority, Notification)>;

fn endpoint(
    index: usize,
    priorities: &[Priority],
    behaviour: Behaviour,
    seen: &Seen,
) -> NotificationEndpoint {
    let mut ep = NotificationEndpoint::new();
    for &priority in priorities {
        let seen = seen.clone();
        let calls = Arc::new(AtomicUsize::new(0));
        ep = ep.on(priority, move |n: Notification| {
            let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
            let _ = seen.send((index, priority, n));
            async move {
                match behaviour {
                    Behaviour::Handled | Behaviour::NoReturn => Ok(NotificationResult::Handled),
                    Behaviour::RequeueOnce if first => Ok(NotificationResult::Requeue),
                    Behaviour::FailOnce if first => Err("Exception()".to_string()),
                    _ => Ok(NotificationResult::Handled),
                }
            }
        });
    }
    ep
}

/// Sends the base message at `priority` to a listener with `endpoints` and returns the
/// calls, in order, as (endpoint index, priority).
async fn dispatch(
    endpoints: &[(&[Priority], Behaviour)],
    priority: Priority,
    allow_requeue: bool,
    expected_calls: usize,
) -> Vec<(usize, Priority)> {
    let transport = memory_transport(&Config::default()).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut builder = NotificationListener::new(&transport, [Target::topic("testtopic")])
        .allow_requeue(allow_requeue);
    for (i, (priorities, behaviour)) in endpoints.iter().enumerate() {
        builder = builder.endpoint(endpoint(i, priorities, *behaviour, &tx));
    }
    let listener = builder.start().await.unwrap();
    Notifier::new(&transport, "publisher_id")
        .topics(["testtopic"])
        .notify(
            &Context::new(),
            "compute.start",
            priority,
            json!({"info": "fuu"}),
        )
        .await;
    let got = receive_exactly(&mut rx, expected_calls, "dispatch").await;
    listener.stop().await;
    listener.wait().await.unwrap();
    let first = &got[0].2;
    for (_, _, n) in &got {
        assert_eq!(n, first, "every call gets the same arguments");
        assert_eq!(n.context, Context::new());
        assert_eq!(
            (n.publisher_id.as_str(), n.event_type.as_str()),
            ("publisher_id", "compute.start")
        );
        assert_eq!(n.payload, json!({"info": "fuu"}));
        assert!(
            is_dashed_uuid(&n.metadata.message_id) && is_python_timestamp(&n.metadata.timestamp)
        );
    }
    got.into_iter().map(|(i, p, _)| (i, p)).collect()
}

use Priority::{Debug, Info, Warn};

#[tokio::test]
async fn notify_dispatcher_no_endpoints() {
    let transport = memory_transport(&Config::default()).await;
    match NotificationListener::new(&transport, [Target::topic("testtopic")]).build() {
        Err(Error::Config(text)) => assert!(text.contains("no handler"), "{text}"),
        Err(other) => panic!("expected a configuration error, got {other:?}"),
        Ok(_) => panic!("a listener without endpoints was built"),
    }
}

#[tokio::test]
async fn notify_dispatcher_one_endpoints() {
    assert_eq!(
        dispatch(&[(&[Warn], Behaviour::Handled)], Warn, true, 1).await,
        [(0, Warn)]
    );
}

#[tokio::test]
async fn notify_dispatcher_two_endpoints_only_one_match() {
    let calls = dispatch(
        &[(&[Warn], Behaviour::Handled), (&[Info], Behaviour::Handled)],
        Info,
        true,
        1,
    )
    .await;
    assert_eq!(calls, [(1, Info)]);
}

#[tokio::test]
async fn notify_dispatcher_two_endpoints_both_match() {
    let calls = dispatch(
        &[
            (&[Debug, Info], Behaviour::Handled),
            (&[Info, Debug], Behaviour::Handled),
        ],
        Debug,
        true,
        2,
    )
    .await;
    assert_eq!(calls, [(0, Debug), (1, Debug)]);
}

#[tokio::test]
async fn notify_dispatcher_no_return_value() {
    assert_eq!(
        dispatch(&[(&[Warn], Behaviour::NoReturn)], Warn, true, 1).await,
        [(0, Warn)]
    );
}

/// 'requeue': the message comes back (the endpoint sees it twice: requeued, then handled).
#[tokio::test]
async fn notify_dispatcher_requeue() {
    let calls = dispatch(&[(&[Debug, Warn], Behaviour::RequeueOnce)], Debug, true, 2).await;
    assert_eq!(calls, [(0, Debug), (0, Debug)]);
}

/// An exception is a requeue.
#[tokio::test]
async fn notify_dispatcher_exception() {
    let calls = dispatch(&[(&[Debug, Warn], Behaviour::FailOnce)], Debug, true, 2).await;
    assert_eq!(calls, [(0, Debug), (0, Debug)]);
}

/// The first endpoint that requeues (or raises) stops dispatch: the next endpoint sees
/// the message only on its redelivery.
#[tokio::test]
async fn notify_dispatcher_requeue_stops_dispatch() {
    for behaviour in [Behaviour::RequeueOnce, Behaviour::FailOnce] {
        let calls = dispatch(
            &[(&[Debug], behaviour), (&[Debug], Behaviour::Handled)],
            Debug,
            true,
            3,
        )
        .await;
        assert_eq!(calls, [(0, Debug), (0, Debug), (1, Debug)]);
    }
}

/// Without allow_requeue a requeue verdict acknowledges the message.
#[tokio::test]
async fn notify_dispatcher_requeue_without_allow_requeue_acks() {
    let calls = dispatch(
        &[
            (&[Debug], Behaviour::RequeueOnce),
            (&[Debug], Behaviour::Handled),
        ],
        Debug,
        false,
        1,
    )
    .await;
    assert_eq!(calls, [(0, Debug)]);
}

/// test_dispatcher_unknown_prio: a message of priority 'what???' is acknowledged
/// without any endpoint call; the next notification is handled as usual.
#[tokio::test]
async fn notify_dispatcher_unknown_prio() {
    let vhost = vhost("unknown_prio");
    let transport = memory_transport_on(&vhost, &Config::default()).await;
    let raw = MemoryDriver::shared(&vhost, "openstack");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let listener = NotificationListener::new(&transport, [Target::topic("testtopic")])
        .endpoint(endpoint(0, &[Info], Behaviour::Handled, &tx))
        .start()
        .await
        .unwrap();
    let odd = NotificationMessage {
        message_id: "99863dda-97f0-443a-a0c1-6ed317b7fd45".into(),
        publisher_id: "publisher_id".into(),
        event_type: "compute.start".into(),
        priority: "what???".into(),
        payload: json!({"info": "fuu"}),
        timestamp: "2014-03-03 18:21:04.369234".into(),
        unique_id: None,
        context: Context::new(),
    };
    raw.publish_raw(
        None,
        "testtopic.info",
        &envelope::encode(&odd.to_map(ContextPacking::Flattened)).unwrap(),
    );
    Notifier::new(&transport, "publisher_id")
        .topics(["testtopic"])
        .info(&Context::new(), "after", json!({}))
        .await;
    let got = receive_exactly(&mut rx, 1, "unknown priority").await;
    assert_eq!(got[0].2.event_type, "after");
    listener.stop().await;
}

// ---------------------------------------------------------------------------------
// TestDispatcherFilter
// ---------------------------------------------------------------------------------

fn filter_notification(publisher_id: &str, event_type: &str, context: Value) -> Notification {
    Notification {
        context: Context::from_value(context).unwrap(),
        publisher_id: publisher_id.into(),
        event_type: event_type.into(),
        priority: Priority::Info,
        payload: json!({"state": "active", "virtual_size": null}),
        metadata: Metadata {
            message_id: "99863dda-97f0-443a-a0c1-6ed317b7fd45".into(),
            timestamp: "2014-03-03 18:21:04.369234".into(),
        },
    }
}

macro_rules! filter_rows {
    ($($name:ident: $filter:expr, $publisher:expr, $event:expr, $ctx:tt => $matches:expr;)*) => {
        $(
            #[test]
            fn $name() {
                let filter: NotificationFilter = $filter;
                filter.validate().unwrap();
                let n = filter_notification($publisher, $event, json!($ctx));
                assert_eq!(filter.matches(&n), $matches);
            }
        )*
    };
}

filter_rows! {
    filter_publisher_id_match:
        NotificationFilter::new().publisher_id("^compute.*"), "compute01.manager", "instance.create.start", {} => true;
    filter_publisher_id_nomatch:
        NotificationFilter::new().publisher_id("^compute.*"), "network01.manager", "instance.create.start", {} => false;
    filter_event_type_match:
        NotificationFilter::new().event_type(r"^instance\.create"), "compute01.manager", "instance.create.start", {} => true;
    filter_event_type_nomatch:
        NotificationFilter::new().event_type(r"^instance\.delete"), "compute01.manager", "instance.create.start", {} => false;
    filter_context_match:
        NotificationFilter::new().context("user", "^adm"), "compute01.manager", "instance.create.start", {"user": "admin"} => true;
    filter_context_key_missing:
        NotificationFilter::new().context("user", "^adm"), "compute01.manager", "instance.create.start", {"project": "admin"} => false;
    filter_metadata_match:
        NotificationFilter::new().metadata("message_id", "^99"), "compute01.manager", "instance.create.start", {} => true;
    filter_metadata_key_missing:
        NotificationFilter::new().metadata("user", "^adm"), "compute01.manager", "instance.create.start", {} => false;
    filter_payload_match:
        NotificationFilter::new().payload("state", "^active$"), "compute01.manager", "instance.create.start", {} => true;
    filter_payload_no_match:
        NotificationFilter::new().payload("state", "^deleted$"), "compute01.manager", "instance.create.start", {} => false;
    filter_payload_key_missing:
        NotificationFilter::new().payload("user", "^adm"), "compute01.manager", "instance.create.start", {} => false;
    filter_payload_value_none:
        NotificationFilter::new().payload("virtual_size", "2048"), "compute01.manager", "instance.create.start", {} => false;
    filter_mix_match:
        NotificationFilter::new().event_type(r"^instance\.create").publisher_id("^compute").context("user", "^adm"),
        "compute01.manager", "instance.create.start", {"user": "admin"} => true;
}

/// `event_type_not_string`: an event type that is a list never reaches a filter or an
/// endpoint: the message is malformed.
#[test]
fn filter_event_type_not_string() {
    let mut map = filter_message_map();
    map.insert(
        "event_type".into(),
        json!(["instance.swim", "instance.fly"]),
    );
    match NotificationMessage::from_map(map) {
        Err(Error::Malformed(text)) => assert!(text.contains("\"event_type\""), "{text}"),
        other => panic!("expected Error::Malformed, got {other:?}"),
    }
}

fn filter_message_map() -> Map<String, Value> {
    NotificationMessage {
        message_id: "99863dda-97f0-443a-a0c1-6ed317b7fd45".into(),
        publisher_id: "compute01.manager".into(),
        event_type: "instance.create.start".into(),
        priority: "INFO".into(),
        payload: json!({"state": "active", "virtual_size": null}),
        timestamp: "2014-03-03 18:21:04.369234".into(),
        unique_id: None,
        context: Context::new(),
    }
    .to_map(ContextPacking::Flattened)
}

/// `re.match` is anchored at the start only.
#[test]
fn filter_matches_at_start_only() {
    let n = filter_notification("compute01.manager", "instance.create.start", json!({}));
    assert!(NotificationFilter::new().event_type("instance").matches(&n));
    assert!(!NotificationFilter::new().event_type("create").matches(&n));
    assert!(
        NotificationFilter::new()
            .event_type(r"instance\.create\.st")
            .matches(&n)
    );
}

#[test]
fn filter_invalid_regex_names_the_rule() {
    match NotificationFilter::new()
        .payload("state", "(unclosed")
        .validate()
    {
        Err(Error::Config(text)) => assert!(
            text.contains("payload") && text.contains("(unclosed"),
            "{text}"
        ),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

/// A filtered endpoint on a listener sees only the matching notifications.
#[tokio::test]
async fn filter_end_to_end() {
    let transport = memory_transport(&Config::default()).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let listener = NotificationListener::new(&transport, [Target::topic("testtopic")])
        .endpoint(
            endpoint(0, &[Info], Behaviour::Handled, &tx)
                .filter(NotificationFilter::new().publisher_id("^compute.*")),
        )
        .start()
        .await
        .unwrap();
    for publisher in ["network01.manager", "compute01.manager"] {
        Notifier::new(&transport, publisher)
            .topics(["testtopic"])
            .info(&Context::new(), "instance.create.start", json!({}))
            .await;
    }
    let got = receive_exactly(&mut rx, 1, "filter").await;
    assert_eq!(got[0].2.publisher_id, "compute01.manager");
    listener.stop().await;
}

// ---------------------------------------------------------------------------------
// TestRoutingNotifier
// ---------------------------------------------------------------------------------

#[test]
fn routing_load_notifiers_no_config() {
    let table = RoutingConfig::default();
    assert!(table.groups().is_empty());
    assert!(table.used_drivers().is_empty());
}

#[test]
fn routing_load_notifiers_no_extensions() {
    for text in ["", "---\n", "~\n"] {
        let table = RoutingConfig::from_yaml(text).unwrap();
        assert!(table.groups().is_empty(), "{text:?}");
        assert!(table.used_drivers().is_empty(), "{text:?}");
    }
}

/// oslo's `group_1: {rpc: foo}` only checks the group names (its driver values are
/// placeholders oslo would choke on when notifying); with criteria maps:
#[test]
fn routing_load_notifiers_config() {
    let table = RoutingConfig::from_yaml("group_1:\n  rpc: {}\ngroup_2:\n  rpc: {}\n").unwrap();
    assert_eq!(table.groups(), ["group_1", "group_2"]);
    assert_eq!(table.used_drivers(), ["rpc"]);
}

#[test]
fn routing_should_load_plugin() {
    let table = RoutingConfig::from_yaml("group_1:\n  zoo: {}\ngroup_2:\n  blah:\n").unwrap();
    let used = table.used_drivers();
    assert_eq!(used, ["blah", "zoo"]);
    assert!(!used.contains(&"foo"));
    assert!(used.contains(&"zoo"));
}

#[test]
fn routing_get_drivers_for_message_accepted_events() {
    let table = RoutingConfig::from_yaml(
        "group_1:\n  rpc:\n    accepted_events:\n      - foo.*\n      - blah.zoo.*\n      - zip\n",
    )
    .unwrap();
    assert!(table.drivers_for("unknown", Info).is_empty());
    assert_eq!(table.drivers_for("foo.1", Info), ["rpc"]);
    assert!(table.drivers_for("foo", Info).is_empty());
    assert_eq!(table.drivers_for("blah.zoo.zing", Info), ["rpc"]);
    assert_eq!(table.drivers_for("zip", Info), ["rpc"]);
}

/// oslo's ('unknown' priority) row: every priority other than the accepted ones.
#[test]
fn routing_get_drivers_for_message_accepted_priorities() {
    let table = RoutingConfig::from_yaml(
        "group_1:\n  rpc:\n    accepted_priorities:\n      - info\n      - error\n",
    )
    .unwrap();
    for priority in Priority::ALL {
        let expected: &[&str] = if matches!(priority, Priority::Info | Priority::Error) {
            &["rpc"]
        } else {
            &[]
        };
        assert_eq!(
            table.drivers_for("anything", priority),
            expected,
            "{priority:?}"
        );
    }
}

#[test]
fn routing_get_drivers_for_message_both() {
    let table = RoutingConfig::from_yaml(
        "group_1:
  rpc:
    accepted_priorities: [info]
    accepted_events: ['foo.*']
  driver_1:
    accepted_priorities: [info]
  driver_2:
    accepted_events: ['foo.*']
",
    )
    .unwrap();
    // oslo's 'unknown' priority: one that is not info.
    assert_eq!(table.drivers_for("foo.blah", Debug), ["driver_2"]);
    assert_eq!(table.drivers_for("unknown", Info), ["driver_1"]);
    assert_eq!(
        table.drivers_for("foo.blah", Info),
        ["driver_1", "driver_2", "rpc"]
    );
}

/// test_filter_func / test_notify: the drivers accepted in every group, together.
#[test]
fn routing_union_over_groups() {
    let table =
        RoutingConfig::from_yaml("group_1:\n  rpc: {}\ngroup_2:\n  foo: {}\n  rpc: {}\n").unwrap();
    assert_eq!(table.drivers_for("any", Info), ["foo", "rpc"]);
}

/// As `fnmatch` on POSIX: event patterns are case-sensitive; priority patterns are
/// lower-cased before matching.
#[test]
fn routing_pattern_case() {
    let table = RoutingConfig::from_yaml(
        "group_1:\n  rpc:\n    accepted_events: ['Foo.*']\n  log:\n    accepted_priorities: [INFO]\n",
    )
    .unwrap();
    assert_eq!(table.drivers_for("Foo.1", Debug), ["rpc"]);
    assert!(table.drivers_for("foo.1", Debug).is_empty());
    assert_eq!(table.drivers_for("x", Info), ["log"]);
}

fn config_error(result: Result<RoutingConfig>) -> String {
    match result {
        Err(Error::Config(text)) => text,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn routing_invalid_yaml() {
    let text = config_error(RoutingConfig::from_yaml("group_1: [unclosed"));
    assert!(text.contains("invalid routing notifier YAML"), "{text}");
    let text = config_error(RoutingConfig::from_yaml(
        "group_1:\n  rpc:\n    accepted_event: [foo]\n",
    ));
    assert!(text.contains("accepted_event"), "{text}");
    // oslo's placeholder `{rpc: foo}`: a driver's criteria must be a map.
    let text = config_error(RoutingConfig::from_yaml("group_1: {rpc: foo}\n"));
    assert!(
        text.contains("invalid routing notifier YAML") && text.contains("invalid type"),
        "{text}"
    );
}

#[test]
fn routing_invalid_pattern() {
    let text = config_error(RoutingConfig::from_yaml(
        "group_1:\n  rpc:\n    accepted_events: ['[']\n",
    ));
    assert!(
        text.contains("invalid routing pattern") && text.contains("\"[\""),
        "{text}"
    );
}

/// test_notify_filtered, end to end: only the accepted drivers send. The table
/// routes `my_event` to messagingv2, info to log, and `nothing` to messaging.
#[tokio::test]
async fn routing_notify_filtered() {
    let table = RoutingConfig::from_yaml(
        "group_1:
  messagingv2: {accepted_events: [my_event]}
  log: {accepted_priorities: [info]}
  messaging: {accepted_events: [nothing]}
",
    )
    .unwrap();
    assert_eq!(table.drivers_for("my_event", Info), ["log", "messagingv2"]);
    let transport = memory_transport(&Config::default()).await;
    let (listeners, mut rx) = listen_on_candidates(&transport, Info).await;
    let notifier = Notifier::new(&transport, "test").sinks([Sink::Routing(Arc::new(table))]);
    assert!(notifier.is_enabled());
    notifier.info(&Context::new(), "my_event", json!({})).await;
    let got = receive_exactly(&mut rx, 1, "my_event").await;
    assert_eq!(got[0].1.event_type, "my_event");
    notifier.info(&Context::new(), "nothing", json!({})).await;
    let got = receive_exactly(&mut rx, 1, "nothing").await;
    assert_eq!(got[0].1.event_type, "nothing");
    notifier.info(&Context::new(), "other", json!({})).await;
    receive_exactly(&mut rx, 0, "other").await;
    for l in listeners {
        l.stop().await;
    }
}

/// `[oslo_messaging_notifications] driver = routing` with `routing_config` naming the
/// YAML file.
#[tokio::test]
async fn routing_from_config() {
    let path = std::env::temp_dir().join(format!("routing_{}.yaml", new_id()));
    std::fs::write(
        &path,
        "group_1:\n  messagingv2: {accepted_events: ['compute.*']}\n",
    )
    .unwrap();
    let mut config = Config::default();
    config.notifications.driver = vec!["routing".into()];
    config.notifications.routing_config = path.to_string_lossy().into_owned();
    let transport = memory_transport(&config).await;
    let notifier = Notifier::from_config(&transport, "test").unwrap();
    let (listeners, mut rx) = listen_on_candidates(&transport, Info).await;
    notifier
        .info(&Context::new(), "compute.start", json!({}))
        .await;
    notifier
        .info(&Context::new(), "network.start", json!({}))
        .await;
    let got = receive_exactly(&mut rx, 1, "routing from config").await;
    assert_eq!(got[0].1.event_type, "compute.start");
    for l in listeners {
        l.stop().await;
    }

    std::fs::write(&path, "group_1:\n  rpc: {accepted_events: ['compute.*']}\n").unwrap();
    match Notifier::from_config(&transport, "test") {
        Err(Error::Config(text)) => assert!(text.contains("\"rpc\""), "{text}"),
        other => panic!("expected a configuration error for driver rpc, got {other:?}"),
    }
    std::fs::remove_file(&path).unwrap();
}
