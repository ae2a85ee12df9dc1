//! test_dispatcher.py (notify): which endpoints are called, requeue stops dispatch.

use super::*;

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
