//! Notification scenarios (oslo's `NotifyTestCase` and listener tests).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::{ARRIVAL_LIMIT, TransportFactory, eventually, unique};
use crate::notify::{
    Notification, NotificationEndpoint, NotificationFilter, NotificationListener,
    NotificationResult, Notifier, Priority,
};
use crate::{Context, Result, Target, Transport};

/// What a recording endpoint saw: `(priority, event_type, payload, publisher_id)`.
type Seen = Arc<Mutex<Vec<(Priority, String, Value, String)>>>;

fn recorder(priorities: &[Priority]) -> (NotificationEndpoint, Seen) {
    let seen: Seen = Arc::default();
    let mut ep = NotificationEndpoint::new();
    for p in priorities {
        let seen = seen.clone();
        ep = ep.on(*p, move |n: Notification| {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push((n.priority, n.event_type, n.payload, n.publisher_id));
            }
        });
    }
    (ep, seen)
}

async fn wait_len(seen: &Seen, n: usize) -> usize {
    eventually(|| seen.lock().unwrap().len() >= n).await;
    seen.lock().unwrap().len()
}

async fn listen(
    transport: &Transport,
    topics: &[&str],
    ep: NotificationEndpoint,
) -> Result<NotificationListener> {
    NotificationListener::new(transport, topics.iter().map(|t| Target::topic(*t)))
        .endpoint(ep)
        .start()
        .await
}

async fn finish(listeners: &[&NotificationListener]) -> Result<()> {
    for l in listeners {
        l.stop().await;
    }
    for l in listeners {
        l.wait().await?;
    }
    Ok(())
}

/// One info notification arrives with priority, event type, payload and publisher.
pub async fn simple(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let topic = unique("simple");
    let (ep, seen) = recorder(&[Priority::Info]);
    let listener = listen(&transport, &[&topic], ep).await?;
    let notifier = Notifier::new(&factory.transport().await?, "test.host").topics([topic.clone()]);
    notifier
        .try_notify(&Context::new(), "test", Priority::Info, "Hello World!")
        .await?;
    assert_eq!(wait_len(&seen, 1).await, 1);
    assert_eq!(
        seen.lock().unwrap()[0],
        (
            Priority::Info,
            "test".to_string(),
            json!("Hello World!"),
            "test.host".to_string()
        )
    );
    finish(&[&listener]).await
}

/// One listener on two topics gets both topics' notifications.
pub async fn multiple_topics(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let (a, b) = (unique("a"), unique("b"));
    let (ep, seen) = recorder(&[Priority::Info]);
    let listener = listen(&transport, &[&a, &b], ep).await?;
    Notifier::new(&transport, "pub_a")
        .topics([a.clone()])
        .try_notify(&Context::new(), "ev_a", Priority::Info, "A")
        .await?;
    Notifier::new(&transport, "pub_b")
        .topics([b.clone()])
        .try_notify(&Context::new(), "ev_b", Priority::Info, "B")
        .await?;
    assert_eq!(wait_len(&seen, 2).await, 2);
    let mut got: Vec<(String, String)> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| (s.1.clone(), s.3.clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("ev_a".into(), "pub_a".into()),
            ("ev_b".into(), "pub_b".into())
        ]
    );
    finish(&[&listener]).await
}

/// Two listeners on one topic without a pool share the notifications: each is handled
/// by one of them, and both handle some.
///
/// Which listener a notification goes to is the transport's choice. A broker that
/// pushes (RabbitMQ, the memory driver) deals a burst round-robin; on one whose
/// consumers poll (Zaqar), whoever asks first takes what is waiting, and between
/// requests that arrive together the server picks, so one listener may take all of a
/// burst of 8 while the other asks too. What every transport promises is that two
/// listeners share a stream. So after oslo's burst of 8, notifications are sent one at
/// a time until both listeners have handled some (for at most the suite's 30 s
/// arrival limit); every one sent must have been handled exactly once.
pub async fn multiple_listeners_share(factory: &TransportFactory) -> Result<()> {
    let topic = unique("shared");
    let (ep1, seen1) = recorder(&[Priority::Info]);
    let (ep2, seen2) = recorder(&[Priority::Info]);
    let l1 = listen(&factory.transport().await?, &[&topic], ep1).await?;
    let l2 = listen(&factory.transport().await?, &[&topic], ep2).await?;
    let notifier = Notifier::new(&factory.transport().await?, "p").topics([topic.clone()]);
    let counts = || (seen1.lock().unwrap().len(), seen2.lock().unwrap().len());
    let deadline = tokio::time::Instant::now() + ARRIVAL_LIMIT;
    let mut sent = 0;
    loop {
        let burst = if sent == 0 { 8 } else { 1 };
        for i in sent..sent + burst {
            notifier
                .try_notify(&Context::new(), &format!("ev{i}"), Priority::Info, i)
                .await?;
        }
        sent += burst;
        let arrived = eventually(|| {
            let (n1, n2) = counts();
            n1 + n2 >= sent
        })
        .await;
        let (n1, n2) = counts();
        if !arrived || (n1 > 0 && n2 > 0) || tokio::time::Instant::now() >= deadline {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let (n1, n2) = counts();
    assert_eq!(n1 + n2, sent, "each notification is handled once");
    let handled: HashSet<String> = (seen1.lock().unwrap().iter())
        .chain(seen2.lock().unwrap().iter())
        .map(|s| s.1.clone())
        .collect();
    assert_eq!(handled.len(), sent, "each notification is handled once");
    assert!(
        n1 > 0 && n2 > 0,
        "both listeners get some of {sent} notifications: {n1} {n2}"
    );
    finish(&[&l1, &l2]).await
}

/// Listeners on different topics each get only their own topic.
pub async fn independent_topics(factory: &TransportFactory) -> Result<()> {
    let (t1, t2) = (unique("t1"), unique("t2"));
    let (ep1, seen1) = recorder(&[Priority::Info]);
    let (ep2, seen2) = recorder(&[Priority::Info]);
    let l1 = listen(&factory.transport().await?, &[&t1], ep1).await?;
    let l2 = listen(&factory.transport().await?, &[&t2], ep2).await?;
    let transport = factory.transport().await?;
    for (topic, tag) in [(&t1, "one"), (&t2, "two")] {
        let n = Notifier::new(&transport, tag).topics([topic.clone()]);
        for i in 0..8 {
            n.try_notify(&Context::new(), tag, Priority::Info, i)
                .await?;
        }
    }
    assert_eq!(wait_len(&seen1, 8).await, 8);
    assert_eq!(wait_len(&seen2, 8).await, 8);
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(seen1.lock().unwrap().iter().all(|s| s.1 == "one"));
    assert!(seen2.lock().unwrap().iter().all(|s| s.1 == "two"));
    assert_eq!(seen1.lock().unwrap().len(), 8);
    finish(&[&l1, &l2]).await
}

/// Each priority goes to the handler of that priority.
pub async fn all_categories(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let topic = unique("categories");
    let (ep, seen) = recorder(&Priority::ALL);
    let listener = listen(&transport, &[&topic], ep).await?;
    let notifier = Notifier::new(&transport, "p").topics([topic.clone()]);
    for p in Priority::ALL {
        notifier
            .try_notify(&Context::new(), &format!("ev.{p}"), p, p.as_str())
            .await?;
    }
    assert_eq!(wait_len(&seen, 7).await, 7);
    for (priority, event_type, payload, _) in seen.lock().unwrap().iter() {
        assert_eq!(event_type, &format!("ev.{priority}"));
        assert_eq!(payload, &json!(priority.as_str()));
    }
    finish(&[&listener]).await
}

/// A batch listener (size 100, timeout 2 s) gets 205 notifications as 100, 100, 5.
/// The timeout leaves a polling transport on a loaded machine time to bring in 100.
pub async fn batch(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let topic = unique("batch");
    let notifier = Notifier::new(&transport, "p").topics([topic.clone()]);
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let s = sizes.clone();
    let listener = NotificationListener::new(&transport, [Target::topic(topic.clone())])
        .on_batch(Priority::Info, move |batch: Vec<Notification>| {
            let s = s.clone();
            async move { s.lock().unwrap().push(batch.len()) }
        })
        .batch(100, Some(Duration::from_secs(2)))
        .build()?;
    for i in 0..205 {
        notifier
            .try_notify(&Context::new(), "ev", Priority::Info, i)
            .await?;
    }
    listener.start().await?;
    eventually(|| sizes.lock().unwrap().iter().sum::<usize>() >= 205).await;
    assert_eq!(*sizes.lock().unwrap(), vec![100, 100, 5]);
    finish(&[&listener]).await
}

/// A handler that asks for a requeue gets the notification again (with
/// `allow_requeue`); a failing handler requeues too.
pub async fn requeue(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let topic = unique("requeue");
    let calls = Arc::new(Mutex::new(Vec::<Value>::new()));
    let c = calls.clone();
    let listener = NotificationListener::new(&transport, [Target::topic(topic.clone())])
        .allow_requeue(true)
        .on(Priority::Info, move |n: Notification| {
            let c = c.clone();
            async move {
                let seen_before = c
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|p| **p == n.payload)
                    .count();
                c.lock().unwrap().push(n.payload.clone());
                match (n.payload.as_str(), seen_before) {
                    (Some("requeue"), 0) => Ok(NotificationResult::Requeue),
                    (Some("fail"), 0) => Err("handler failed"),
                    _ => Ok(NotificationResult::Handled),
                }
            }
        })
        .start()
        .await?;
    let notifier = Notifier::new(&transport, "p").topics([topic.clone()]);
    notifier
        .try_notify(&Context::new(), "ev", Priority::Info, "requeue")
        .await?;
    notifier
        .try_notify(&Context::new(), "ev", Priority::Info, "fail")
        .await?;
    eventually(|| calls.lock().unwrap().len() >= 4).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut got = calls.lock().unwrap().clone();
    got.sort_by_key(|v| v.to_string());
    assert_eq!(
        got,
        vec![
            json!("fail"),
            json!("fail"),
            json!("requeue"),
            json!("requeue")
        ]
    );
    finish(&[&listener]).await
}

/// Whether the factory's transports keep a topic's order for one listener.
async fn transport_orders(factory: &TransportFactory) -> Result<bool> {
    Ok(factory.transport().await?.capabilities().total_order)
}

/// Every pool gets every notification (in order, where the transport keeps order);
/// members of one pool share them.
pub async fn pools(factory: &TransportFactory) -> Result<()> {
    let topic = unique("pools");
    let (ep1, seen1) = recorder(&[Priority::Info]);
    let (ep2, seen2) = recorder(&[Priority::Info]);
    let (ep3, seen3) = recorder(&[Priority::Info]);
    let start = |ep, pool: &'static str| {
        let topic = topic.clone();
        async move {
            NotificationListener::new(&factory.transport().await?, [Target::topic(topic)])
                .pool(pool)
                .endpoint(ep)
                .start()
                .await
        }
    };
    let l1 = start(ep1, "pool1").await?;
    let l2 = start(ep2, "pool2").await?;
    let l3 = start(ep3, "pool2").await?;
    let notifier = Notifier::new(&factory.transport().await?, "p").topics([topic.clone()]);
    for i in 0..20 {
        notifier
            .try_notify(&Context::new(), "ev", Priority::Info, i)
            .await?;
    }
    assert_eq!(wait_len(&seen1, 20).await, 20);
    let mut got1: Vec<i64> = seen1
        .lock()
        .unwrap()
        .iter()
        .filter_map(|s| s.2.as_i64())
        .collect();
    if !transport_orders(factory).await? {
        got1.sort();
    }
    assert_eq!(got1, (0..20).collect::<Vec<_>>(), "in order");
    eventually(|| seen2.lock().unwrap().len() + seen3.lock().unwrap().len() >= 20).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    let mut pool2: Vec<i64> = [seen2.lock().unwrap().clone(), seen3.lock().unwrap().clone()]
        .concat()
        .iter()
        .filter_map(|s| s.2.as_i64())
        .collect();
    pool2.sort();
    assert_eq!(
        pool2,
        (0..20).collect::<Vec<_>>(),
        "pool2 members share the copy"
    );
    assert!(!seen2.lock().unwrap().is_empty() && !seen3.lock().unwrap().is_empty());
    finish(&[&l1, &l2, &l3]).await
}

/// Filters on publisher, event type, context and payload decide what an endpoint sees.
pub async fn filter(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let topic = unique("filter");
    let (ep, seen) = recorder(&[Priority::Info]);
    let ep = ep.filter(
        NotificationFilter::new()
            .publisher_id("^compute")
            .event_type(r"instance\.create")
            .context("user", "^adm")
            .payload("state", "^active$"),
    );
    let listener = listen(&transport, &[&topic], ep).await?;
    let admin = Context::new().with("user", "admin");
    let cases = [
        (
            "compute01",
            "instance.create.start",
            admin.clone(),
            json!({"state": "active"}),
            true,
        ),
        (
            "network01",
            "instance.create.start",
            admin.clone(),
            json!({"state": "active"}),
            false,
        ),
        (
            "compute01",
            "instance.delete.start",
            admin.clone(),
            json!({"state": "active"}),
            false,
        ),
        (
            "compute01",
            "instance.create.start",
            Context::new().with("project", "admin"),
            json!({"state": "active"}),
            false,
        ),
        (
            "compute01",
            "instance.create.start",
            admin.clone(),
            json!({"state": "deleted"}),
            false,
        ),
        (
            "compute01",
            "instance.create.start",
            admin.clone(),
            json!({"state": null}),
            false,
        ),
    ];
    for (publisher, event_type, ctx, payload, _) in &cases {
        Notifier::new(&transport, *publisher)
            .topics([topic.clone()])
            .try_notify(ctx, event_type, Priority::Info, payload)
            .await?;
    }
    Notifier::new(&transport, "compute02")
        .topics([topic.clone()])
        .try_notify(
            &admin,
            "instance.create.end",
            Priority::Info,
            json!({"state": "active", "marker": 1}),
        )
        .await?;
    assert_eq!(wait_len(&seen, 2).await, 2);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Sorted: what matters here is which got through, not their order.
    let mut got: Vec<String> = seen.lock().unwrap().iter().map(|s| s.3.clone()).collect();
    got.sort();
    assert_eq!(got, vec!["compute01".to_string(), "compute02".to_string()]);
    finish(&[&listener]).await
}

/// A listener on a topic in two exchanges gets those, and not the default
/// exchange's unless exchanges share queues (RabbitMQ: the notifier binds the queue
/// `<topic>.info` to the default exchange, and that queue is the listener's too).
pub async fn two_exchanges(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let isolated = transport.capabilities().isolated_exchanges;
    let topic = unique("exchanges");
    let (x1, x2) = (unique("x1"), unique("x2"));
    let (ep, seen) = recorder(&[Priority::Info]);
    let listener = NotificationListener::new(
        &transport,
        [
            Target::topic(topic.clone()).exchange(x1.clone()),
            Target::topic(topic.clone()).exchange(x2.clone()),
        ],
    )
    .endpoint(ep)
    .start()
    .await?;
    let notifier = Notifier::new(&transport, "p").topics([topic.clone()]);
    notifier
        .try_notify(
            &Context::new(),
            "default",
            Priority::Info,
            "default exchange",
        )
        .await?;
    for x in [&x1, &x2] {
        let target = Target::topic(format!("{topic}.info")).exchange(x.clone());
        let message = crate::wire::NotificationMessage {
            message_id: crate::wire::notification::new_message_id(),
            publisher_id: "p".into(),
            event_type: x.clone(),
            priority: "INFO".into(),
            payload: json!(x),
            timestamp: crate::wire::notification::utc_now_timestamp(),
            unique_id: None,
            context: Context::new(),
        };
        transport
            .driver()
            .send_notification(
                &target,
                message,
                crate::driver::NotificationFormat::V2,
                crate::Retry::Forever,
            )
            .await?;
    }
    let mut want = vec![x1, x2];
    if !isolated {
        want.push("default".into());
    }
    assert_eq!(wait_len(&seen, want.len()).await, want.len());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut got: Vec<String> = seen.lock().unwrap().iter().map(|s| s.1.clone()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    finish(&[&listener]).await
}

/// A listener subscribes only to the priorities it handles: a warn notification
/// stays queued for a later warn listener.
pub async fn priority_subscription(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let topic = unique("priorities");
    let (info_ep, info_seen) = recorder(&[Priority::Info]);
    let info = listen(&transport, &[&topic], info_ep).await?;
    assert_eq!(info.priorities(), &[Priority::Info]);
    let notifier = Notifier::new(&transport, "p").topics([topic.clone()]);
    notifier
        .try_notify(&Context::new(), "w", Priority::Warn, 1)
        .await?;
    notifier
        .try_notify(&Context::new(), "i", Priority::Info, 2)
        .await?;
    assert_eq!(wait_len(&info_seen, 1).await, 1);
    let (warn_ep, warn_seen) = recorder(&[Priority::Warn]);
    let warn = listen(&transport, &[&topic], warn_ep).await?;
    assert_eq!(wait_len(&warn_seen, 1).await, 1);
    assert_eq!(warn_seen.lock().unwrap()[0].1, "w");
    assert_eq!(info_seen.lock().unwrap().len(), 1);
    finish(&[&info, &warn]).await
}

/// A listener stopped and started again keeps receiving; nothing sent in between is lost.
pub async fn listener_restart(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let topic = unique("relisten");
    let (ep, seen) = recorder(&[Priority::Info]);
    let listener = listen(&transport, &[&topic], ep).await?;
    let notifier = Notifier::new(&transport, "p").topics([topic.clone()]);
    notifier
        .try_notify(&Context::new(), "one", Priority::Info, 1)
        .await?;
    assert_eq!(wait_len(&seen, 1).await, 1);
    listener.stop().await;
    listener.wait().await?;
    notifier
        .try_notify(&Context::new(), "two", Priority::Info, 2)
        .await?;
    listener.start().await?;
    assert_eq!(wait_len(&seen, 2).await, 2);
    assert_eq!(seen.lock().unwrap()[1].1, "two");
    finish(&[&listener]).await
}
