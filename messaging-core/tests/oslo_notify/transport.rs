//! TestMessagingNotifier through the transport: messaging (v1) x messagingv2 x topics.

use super::*;

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
