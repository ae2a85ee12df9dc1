//! An RPC server and a notification listener on `memory://` drop malformed messages
//! (as a foreign or broken client might publish them) and keep serving.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use messaging_core::memory::MemoryDriver;
use messaging_core::notify::{
    Notification, NotificationListener, NotificationResult, Notifier, Priority,
};
use messaging_core::rpc::{Endpoint, RpcServer};
use messaging_core::wire::request::new_id;
use messaging_core::{
    Config, Context, Error, RemoteError, RpcClient, Target, Transport, TransportUrl,
};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

const TOPIC: &str = "malformed_topic";
const SERVER: &str = "server1";

/// A transport over a memory driver of its own broker, and the driver, to publish raw
/// bodies with.
fn transport() -> (Transport, Arc<MemoryDriver>) {
    let vhost = format!("malformed_{}", new_id());
    let driver = Arc::new(MemoryDriver::shared(&vhost, "openstack"));
    let url = TransportUrl::parse(&format!("memory:///{vhost}")).unwrap();
    (
        Transport::new(driver.clone(), url, Arc::new(Config::default())),
        driver,
    )
}

/// Wraps an inner message (any JSON) in an envelope of `version`.
fn enveloped(version: &str, inner: Value) -> Vec<u8> {
    json!({"oslo.version": version, "oslo.message": inner.to_string()})
        .to_string()
        .into_bytes()
}

fn request_garbage() -> Vec<(&'static str, Vec<u8>)> {
    let id = new_id();
    vec![
        ("empty body", Vec::new()),
        ("not JSON", b"not json".to_vec()),
        ("JSON array", b"[1, 2, 3]".to_vec()),
        ("JSON string", br#""just a string""#.to_vec()),
        (
            "envelope version 3.0",
            enveloped("3.0", json!({"method": "echo", "args": {"x": 1}})),
        ),
        (
            "envelope version 1.0",
            enveloped("1.0", json!({"method": "echo", "args": {"x": 1}})),
        ),
        (
            "envelope message not JSON",
            br#"{"oslo.version": "2.0", "oslo.message": "{nope"}"#.to_vec(),
        ),
        (
            "envelope message not a string",
            br#"{"oslo.version": "2.0", "oslo.message": {"method": "echo"}}"#.to_vec(),
        ),
        (
            "envelope message an array",
            enveloped("2.0", json!([{"method": "echo"}])),
        ),
        (
            "request without method",
            enveloped("2.0", json!({"args": {"x": 1}})),
        ),
        (
            "bare request without method",
            br#"{"args": {"x": 1}}"#.to_vec(),
        ),
        (
            "method not a string",
            enveloped("2.0", json!({"method": ["echo"], "args": {}})),
        ),
        (
            "args not an object",
            enveloped("2.0", json!({"method": "echo", "args": [1, 2]})),
        ),
        (
            "_msg_id without _reply_q",
            enveloped("2.0", json!({"method": "echo", "args": {}, "_msg_id": id})),
        ),
        (
            "_timeout not a number",
            enveloped(
                "2.0",
                json!({"method": "echo", "args": {}, "_timeout": "soon"}),
            ),
        ),
    ]
}

fn echo_endpoint(calls: Arc<AtomicUsize>) -> Endpoint {
    Endpoint::new().method("echo", move |_ctx: Context, args: Map<String, Value>| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, RemoteError>(Value::Object(args)) }
    })
}

#[tokio::test]
async fn rpc_server_keeps_serving_after_malformed_requests() {
    let (transport, driver) = transport();
    let calls = Arc::new(AtomicUsize::new(0));
    let server = RpcServer::new(&transport, Target::topic(TOPIC).server(SERVER))
        .endpoint(echo_endpoint(calls.clone()))
        .start()
        .await
        .unwrap();
    let client = RpcClient::new(&transport, Target::topic(TOPIC)).timeout(Duration::from_secs(5));

    // All at once, then a call.
    for (_, body) in request_garbage() {
        driver.publish_raw(None, TOPIC, &body);
    }
    let reply: Value = client
        .call(&Context::new(), "echo", json!({"n": 0}))
        .await
        .unwrap();
    assert_eq!(reply, json!({"n": 0}));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "no malformed request was dispatched"
    );

    // One at a time, each followed by a call (to the topic and to the server).
    for (i, (what, body)) in request_garbage().into_iter().enumerate() {
        driver.publish_raw(None, TOPIC, &body);
        let n = i + 1;
        let reply: Value = client
            .prepare()
            .server(SERVER)
            .call(&Context::new(), "echo", json!({"n": n}))
            .await
            .unwrap_or_else(|e| panic!("call after {what} failed: {e}"));
        assert_eq!(reply, json!({"n": n}), "after {what}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1 + request_garbage().len());

    // A well-formed request for a method nobody has is answered with a failure (for a
    // call) or dropped (for a cast) without stopping the server.
    client
        .cast(&Context::new(), "missing", json!({}))
        .await
        .unwrap();
    match client
        .call::<_, Value>(&Context::new(), "missing", json!({}))
        .await
    {
        Err(Error::Remote(f)) => {
            assert!(
                f.is("oslo_messaging.rpc.dispatcher", "NoSuchMethod"),
                "{f:?}"
            );
            assert_eq!(f.message, "Endpoint does not support RPC method missing");
        }
        other => panic!("expected a NoSuchMethod failure, got {other:?}"),
    }
    let reply: Value = client
        .call(&Context::new(), "echo", json!({"last": true}))
        .await
        .unwrap();
    assert_eq!(reply, json!({"last": true}));

    server.stop().await;
    server.wait().await.unwrap();
}

fn notification_garbage() -> Vec<(&'static str, Vec<u8>)> {
    let good = |overrides: Value| {
        let mut m = json!({
            "message_id": "99863dda-97f0-443a-a0c1-6ed317b7fd45",
            "publisher_id": "compute01.manager",
            "event_type": "instance.create.start",
            "priority": "INFO",
            "payload": {"state": "active"},
            "timestamp": "2014-03-03 18:21:04.369234"
        });
        for (k, v) in overrides.as_object().unwrap() {
            if v.is_null() {
                m.as_object_mut().unwrap().remove(k);
            } else {
                m[k] = v.clone();
            }
        }
        m
    };
    vec![
        ("empty body", Vec::new()),
        ("not JSON", b"not json".to_vec()),
        ("JSON array", b"[1, 2, 3]".to_vec()),
        ("envelope version 3.0", enveloped("3.0", good(json!({})))),
        (
            "envelope message not JSON",
            br#"{"oslo.version": "2.0", "oslo.message": "{nope"}"#.to_vec(),
        ),
        (
            "without publisher_id",
            enveloped("2.0", good(json!({"publisher_id": null}))),
        ),
        (
            "without event_type (bare)",
            good(json!({"event_type": null})).to_string().into_bytes(),
        ),
        (
            "event_type a list",
            enveloped(
                "2.0",
                good(json!({"event_type": ["instance.swim", "instance.fly"]})),
            ),
        ),
        (
            "priority not a string",
            enveloped("2.0", good(json!({"priority": 20}))),
        ),
        (
            "unknown priority",
            enveloped("2.0", good(json!({"priority": "what???"}))),
        ),
    ]
}

#[tokio::test]
async fn notification_listener_keeps_listening_after_malformed_notifications() {
    let (transport, driver) = transport();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let listener = NotificationListener::new(&transport, [Target::topic(TOPIC)])
        .allow_requeue(true)
        .on(Priority::Info, move |n: Notification| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(n);
                NotificationResult::Handled
            }
        })
        .start()
        .await
        .unwrap();
    let info_topic = format!("{TOPIC}.info");
    let notifier = Notifier::new(&transport, "publisher").topics([TOPIC]);

    for (_, body) in notification_garbage() {
        driver.publish_raw(None, &info_topic, &body);
    }
    notifier
        .info(&Context::new(), "after.all", json!({"n": 0}))
        .await;
    let n = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (n.event_type.as_str(), &n.payload),
        ("after.all", &json!({"n": 0}))
    );

    for (what, body) in notification_garbage() {
        driver.publish_raw(None, &info_topic, &body);
        notifier
            .info(&Context::new(), "after.one", json!({"after": what}))
            .await;
        let n = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no notification after {what}"))
            .unwrap();
        assert_eq!(
            (n.event_type.as_str(), &n.payload),
            ("after.one", &json!({"after": what}))
        );
        assert_eq!(n.publisher_id, "publisher");
    }

    // Nothing else reached the handler.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), rx.recv())
            .await
            .is_err()
    );
    listener.stop().await;
    listener.wait().await.unwrap();
}
