//! TestLogNotifier

use super::*;

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
