//! Notifications, the same over every transport: the Python peer's notifier and
//! listener, their Rust counterparts, and the scenarios every transport runs.

use super::*;

/// The publisher id of the Python notifiers [`py_notify`] runs.
pub const PY_PUBLISHER: &str = "compute.py1";

/// The arguments of `oslo_peer.py notify`: a Python notifier (publisher
/// [`PY_PUBLISHER`], `driver` messaging or messagingv2) sending `payload` as
/// `event_type` at `priority` on `topic`; `extra` are further flags (`--context`,
/// `--count`, ...).
pub fn py_notify(
    url: &str,
    topic: &str,
    driver: &str,
    priority: &str,
    event_type: &str,
    payload: Value,
    extra: &[&str],
) -> Vec<String> {
    let mut a = args([
        "notify",
        "--url",
        url,
        "--topic",
        topic,
        "--publisher-id",
        PY_PUBLISHER,
        "--driver",
        driver,
        "--priority",
        priority,
    ]);
    a.extend(extra.iter().map(|s| s.to_string()));
    a.push(event_type.to_string());
    a.push(payload.to_string());
    a
}

/// Runs a Python notifier (the arguments of [`py_notify`]) and checks that it exited 0
/// (over Kafka: the broker acknowledged every message).
pub async fn python_notifies(notify: &[String]) {
    let run = run_peer(notify).await;
    assert_eq!(run.code, 0, "the Python notifier failed: {run:#?}");
}

/// Sends a notification from Rust, failing unless every sink of `notifier` took it.
pub async fn rust_notifies(
    notifier: &Notifier,
    ctx: &Context,
    event_type: &str,
    priority: Priority,
    payload: Value,
) {
    notifier
        .try_notify(ctx, event_type, priority, payload)
        .await
        .unwrap_or_else(|e| panic!("the Rust notifier did not send {event_type}: {e}"));
}

/// The arguments of `oslo_peer.py listen`: a Python listener on `topic` (in `pool` if
/// given) for the comma-separated `priorities`; `extra` are further flags (`--count`,
/// `--timeout`, filters, ...).
pub fn py_listen(
    url: &str,
    topic: &str,
    pool: Option<&str>,
    priorities: &str,
    extra: &[&str],
) -> Vec<String> {
    let mut a = args(["listen", "--url", url, "--topic", topic]);
    if let Some(pool) = pool {
        a.extend(args(["--pool", pool]));
    }
    a.extend(args(["--priorities", priorities]));
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// A started Rust listener on `topic` (in `pool` if given) with a handler for each of
/// `priorities`, which forwards each notification to `tx` with the handler's priority.
pub async fn rust_listener(
    transport: &Transport,
    topic: &str,
    pool: Option<&str>,
    priorities: &[Priority],
    tx: &mpsc::UnboundedSender<(Priority, Notification)>,
) -> NotificationListener {
    let mut builder = NotificationListener::new(transport, [Target::topic(topic)]);
    if let Some(pool) = pool {
        builder = builder.pool(pool);
    }
    for &priority in priorities {
        let tx = tx.clone();
        builder = builder.on(priority, move |n: Notification| {
            let _ = tx.send((priority, n));
            std::future::ready(())
        });
    }
    builder
        .start()
        .await
        .unwrap_or_else(|e| panic!("the Rust listener on {topic} did not start: {e}"))
}

/// Stops a notification listener and checks that it stopped within 30 s.
pub async fn stop_listener(listener: NotificationListener) {
    listener.stop().await;
    listener
        .wait_timeout(Duration::from_secs(30))
        .await
        .expect("the listener stopped in time");
}

/// Everything a [`rust_listener`]'s channel yields within `period`, without the
/// handlers' priorities.
pub async fn drain_notifications(
    rx: &mut mpsc::UnboundedReceiver<(Priority, Notification)>,
    period: Duration,
) -> Vec<Notification> {
    drain(rx, period)
        .await
        .into_iter()
        .map(|(_, n)| n)
        .collect()
}

/// Python notifiers with `driver` (messaging or messagingv2) send payloads `{"id": 1}`
/// to `{"id": 4}` at info, warn, error and audit with a context (user alice,
/// `request_id`, an auth token), and `{"id": 5}` at debug, on `topic`. A Rust listener
/// (in `pool` if given) with handlers for the first four gets each once, in the handler
/// of its priority, with oslo's publisher, event type, metadata (a uuid message id, a
/// timestamp) and context, the token redacted; debug, which has no handler, is not
/// subscribed to. `transport` names the transport in failure messages.
pub async fn python_notifications_reach_rust_by_priority(
    s: &Setup,
    topic: &str,
    pool: Option<&str>,
    driver: &str,
    request_id: &str,
    transport: &str,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let listener = rust_listener(
        &s.transport,
        topic,
        pool,
        &[
            Priority::Info,
            Priority::Warn,
            Priority::Error,
            Priority::Audit,
        ],
        &tx,
    )
    .await;

    let ctx = json!({"user": "alice", "request_id": request_id, "auth_token": "s3cret"});
    let ctx = ctx.to_string();
    for (priority, id) in [("info", 1), ("warn", 2), ("error", 3), ("audit", 4)] {
        python_notifies(&py_notify(
            &s.url,
            topic,
            driver,
            priority,
            "compute.instance.update",
            json!({"id": id}),
            &["--context", &ctx],
        ))
        .await;
    }
    // Debug has no handler: the listener does not subscribe to it (over Kafka, to
    // `<topic>.debug`).
    python_notifies(&py_notify(
        &s.url,
        topic,
        driver,
        "debug",
        "compute.instance.update",
        json!({"id": 5}),
        &[],
    ))
    .await;

    let what = format!("a Python notification over {transport}");
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(recv(&mut rx, &what).await);
    }
    got.extend(drain(&mut rx, QUIET_PERIOD).await);
    assert_eq!(got.len(), 4, "over {transport}: {got:#?}");
    for (handler, n) in &got {
        assert_eq!(
            *handler, n.priority,
            "routed to the handler of its priority"
        );
        let expected_id = match n.priority {
            Priority::Info => 1,
            Priority::Warn => 2,
            Priority::Error => 3,
            Priority::Audit => 4,
            other => panic!("unexpected priority {other:?}"),
        };
        assert_eq!(n.payload, json!({"id": expected_id}));
        assert_eq!(n.publisher_id, PY_PUBLISHER);
        assert_eq!(n.event_type, "compute.instance.update");
        assert_eq!(
            n.metadata.message_id.len(),
            36,
            "uuid with dashes: {:?}",
            n.metadata
        );
        assert!(n.metadata.timestamp.starts_with("20"), "{:?}", n.metadata);
        assert_eq!(
            n.context.get("user"),
            Some(&json!("alice")),
            "{:?}",
            n.context
        );
        assert_eq!(n.context.get("request_id"), Some(&json!(request_id)));
        assert_ne!(
            n.context.get("auth_token"),
            Some(&json!("s3cret")),
            "oslo redacts the token"
        );
    }
    stop_listener(listener).await;
}

/// A Rust notifier with `sink` sends payloads `{"id": 1}` to `{"id": 4}` at info, warn,
/// error and debug with a context (user alice, `request_id`, roles, an auth token) on
/// `topic`. A Python listener (in `pool` if given) for info, warn and error gets the
/// first three with the Rust publisher, event type, metadata (a uuid message id, a
/// timestamp) and context, the token redacted, and never the debug one. `transport`
/// names the transport in failure messages.
pub async fn rust_notifications_reach_python(
    s: &Setup,
    topic: &str,
    pool: Option<&str>,
    sink: Sink,
    request_id: &str,
    transport: &str,
) {
    let mut listener = Peer::start(py_listen(
        &s.url,
        topic,
        pool,
        "info,warn,error",
        &["--count", "3", "--timeout", "60"],
    ))
    .await;
    let notifier = Notifier::new(&s.transport, "compute.rs1")
        .topics([topic])
        .sinks([sink]);
    let ctx = Context::new()
        .with("user", "alice")
        .with("request_id", request_id)
        .with("roles", json!(["admin", "member"]))
        .with("auth_token", "s3cret");
    for (priority, id) in [
        (Priority::Info, 1),
        (Priority::Warn, 2),
        (Priority::Error, 3),
        (Priority::Debug, 4),
    ] {
        rust_notifies(
            &notifier,
            &ctx,
            "compute.instance.update",
            priority,
            json!({"id": id}),
        )
        .await;
    }
    let mut got = listener.take(3).await;
    got.sort_by_key(|l| l["payload"]["id"].as_i64());
    let priorities: Vec<&str> = got
        .iter()
        .map(|l| l["priority"].as_str().unwrap())
        .collect();
    assert_eq!(
        priorities,
        ["info", "warn", "error"],
        "over {transport}: {got:#?}"
    );
    for l in &got {
        assert_eq!(l["publisher_id"], "compute.rs1");
        assert_eq!(l["event_type"], "compute.instance.update");
        assert_eq!(
            l["metadata"]["message_id"].as_str().map(str::len),
            Some(36),
            "{l}"
        );
        assert!(l["metadata"]["timestamp"].as_str().is_some(), "{l}");
        assert_eq!(l["ctxt"]["user"], "alice", "{l}");
        assert_eq!(l["ctxt"]["request_id"], request_id, "{l}");
        assert_eq!(l["ctxt"]["roles"], json!(["admin", "member"]), "{l}");
        assert_ne!(
            l["ctxt"]["auth_token"], "s3cret",
            "the token is redacted: {l}"
        );
    }
    let (code, rest) = listener.finish().await;
    assert_eq!(
        code, 0,
        "the Python listener stops after 3 notifications: {rest:?}"
    );
    assert!(rest.iter().all(|l| l["priority"] != "debug"), "{rest:?}");
}

/// Generates the notification interop tests that read the same over every transport,
/// one `#[tokio::test]` each (as `messaging_core::conformance_tests!` does for the
/// drivers):
///
/// - `python_messaging_v1_notifications_reach_rust_by_priority` and
///   `python_messaging_v2_notifications_reach_rust_by_priority`:
///   [`python_notifications_reach_rust_by_priority`] with the messaging and messagingv2
///   Python drivers, request id `req-<transport>-1`;
/// - `rust_messaging_v1_notifications_reach_python` and
///   `rust_messaging_v2_notifications_reach_python`: [`rust_notifications_reach_python`]
///   with `Sink::Messaging` and `Sink::MessagingV2`, request id `req-<transport>-2`.
///
/// `setup` is the expression that sets a test up (`setup().await`,
/// `setup_kafka().await`); `transport` names the transport in failure messages and
/// starts the topic names; with `pool: true` the listeners join a pool of their own
/// (Kafka's consumers need a group).
///
/// ```text
/// common::notification_interop_tests!(setup: setup().await, transport: "rabbit", pool: false);
/// ```
#[allow(unused_macros)] // hybrid_kafka has no use for it
macro_rules! notification_interop_tests {
    (setup: $setup:expr, transport: $transport:literal, pool: $pool:expr $(,)?) => {
        $crate::common::notification_interop_tests!(@each $setup, $transport, $pool;
            python_messaging_v1_notifications_reach_rust_by_priority:
                python_notifications_reach_rust_by_priority("messaging", "pynotify", "1"),
            python_messaging_v2_notifications_reach_rust_by_priority:
                python_notifications_reach_rust_by_priority("messagingv2", "pynotify", "1"),
            rust_messaging_v1_notifications_reach_python:
                rust_notifications_reach_python(
                    messaging::notify::Sink::Messaging, "rsnotify", "2"
                ),
            rust_messaging_v2_notifications_reach_python:
                rust_notifications_reach_python(
                    messaging::notify::Sink::MessagingV2, "rsnotify", "2"
                ),
        );
    };
    (@each $setup:expr, $transport:literal, $pool:expr;
        $($name:ident: $scenario:ident($how:expr, $topic:literal, $n:literal)),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let s = $setup;
                let topic = $crate::common::unique(concat!($transport, "-", $topic));
                let pool = ($pool).then(|| $crate::common::unique("pool"));
                $crate::common::$scenario(
                    &s,
                    &topic,
                    pool.as_deref(),
                    $how,
                    concat!("req-", $transport, "-", $n),
                    $transport,
                )
                .await;
            }
        )*
    };
}
#[allow(unused_imports)] // hybrid_kafka has no use for it
pub(crate) use notification_interop_tests;
