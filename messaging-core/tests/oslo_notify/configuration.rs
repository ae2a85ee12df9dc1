//! is_enabled, topics and retry from the configuration, the serializer.

use super::*;

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
