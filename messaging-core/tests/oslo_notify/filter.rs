//! oslo's `TestDispatcherFilter`: which notifications a listener's filter lets through.

use super::*;

fn filter_notification(publisher_id: &str, event_type: &str, context: Value) -> Notification {
    Notification::new(publisher_id, event_type, Priority::Info)
        .context(Context::from_value(context).unwrap())
        .payload(json!({"state": "active", "virtual_size": null}))
        .metadata(Metadata {
            message_id: "99863dda-97f0-443a-a0c1-6ed317b7fd45".into(),
            timestamp: "2014-03-03 18:21:04.369234".into(),
        })
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
