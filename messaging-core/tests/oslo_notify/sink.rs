//! TestMessagingNotifier through the `test` sink: priority x publisher id x retry.

use super::*;

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
