//! Notifications: Python notifier -> Rust listener

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_notifications_reach_every_rust_pool() {
    let s = setup().await;
    let topic = unique("pypools");
    let (tx_a, mut rx_a) = mpsc::unbounded_channel();
    let (tx_b, mut rx_b) = mpsc::unbounded_channel();
    let pool_a = NotificationListener::new(&s.transport, [Target::topic(&topic)])
        .pool(unique("pool-a"))
        .on(Priority::Info, forward(&tx_a))
        .start()
        .await
        .expect("pool a listens");
    let pool_b = NotificationListener::new(&s.transport, [Target::topic(&topic)])
        .pool(unique("pool-b"))
        .on(Priority::Info, forward(&tx_b))
        .start()
        .await
        .expect("pool b listens");
    python_notifies(&py_notify(
        &s.url,
        &topic,
        "messagingv2",
        "info",
        "image.upload",
        json!({"size": 3}),
        &["--count", "2"],
    ))
    .await;
    for (name, rx) in [("pool a", &mut rx_a), ("pool b", &mut rx_b)] {
        let mut got = vec![recv(rx, name).await, recv(rx, name).await];
        got.extend(drain(rx, common::QUIET_PERIOD).await);
        assert_eq!(got.len(), 2, "{name} gets its own copy of each: {got:#?}");
        assert!(got.iter().all(|n| n.payload == json!({"size": 3})));
    }
    for l in [pool_a, pool_b] {
        stop_listener(l).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_notifications_pass_a_rust_event_type_filter() {
    let s = setup().await;
    let topic = unique("pyfilter");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let listener = NotificationListener::new(&s.transport, [Target::topic(&topic)])
        .filter(NotificationFilter::new().event_type(r"compute\.instance\..*"))
        .on(Priority::Info, forward(&tx))
        .start()
        .await
        .expect("Rust listener starts");
    for event_type in [
        "image.upload",
        "xcompute.instance.create",
        "compute.instance.create.end",
    ] {
        python_notifies(&py_notify(
            &s.url,
            &topic,
            "messaging",
            "info",
            event_type,
            json!({}),
            &[],
        ))
        .await;
    }
    let n = recv(&mut rx, "the matching notification").await;
    assert_eq!(n.event_type, "compute.instance.create.end");
    let rest = drain(&mut rx, common::QUIET_PERIOD).await;
    assert!(rest.is_empty(), "filtered out: {rest:#?}");
    stop_listener(listener).await;
}
