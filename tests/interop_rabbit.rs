//! Interop with Python oslo.messaging over a real RabbitMQ, both directions: a Rust
//! client calls a Python server and the reverse, Python notifiers feed Rust listeners
//! and the reverse. The Python side is `tests/peers/oslo_peer.py` run by the virtualenv
//! that `scripts/services` builds; the broker is `RABBIT_URL` (default
//! `rabbit://guest:guest@127.0.0.1:5672/`). Each test uses its own topics.

mod common;

use std::time::{Duration, Instant};

use common::{
    Peer, Seen, args, drain, forward, py_listen, py_notify, python_notifies, recording_endpoint,
    recv, run_peer, rust_notifies, setup, stop_listener, unique,
};
use messaging::notify::{NotificationFilter, NotificationListener, Notifier, Priority};
use messaging::{Context, Error, RpcClient, RpcServer, Target, Transport};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// A call timeout long enough for a loaded machine, short enough to fail a test.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

fn client(transport: &Transport, topic: &str) -> RpcClient {
    RpcClient::new(transport, Target::topic(topic)).timeout(CALL_TIMEOUT)
}

/// A started Rust server with the recording endpoint (optionally in a namespace/version).
async fn rust_server(
    transport: &Transport,
    topic: &str,
    name: &str,
    tx: &mpsc::UnboundedSender<Seen>,
    namespace_version: Option<(&str, &str)>,
) -> RpcServer {
    let mut endpoint = recording_endpoint(name, tx.clone());
    if let Some((namespace, version)) = namespace_version {
        endpoint = endpoint.namespace(namespace).version(version);
    }
    RpcServer::new(transport, Target::topic(topic).server(name))
        .endpoint(endpoint)
        .start()
        .await
        .unwrap_or_else(|e| panic!("Rust server {name} on {topic} did not start: {e}"))
}

async fn stop(server: RpcServer) {
    server.stop().await.expect("stop");
    server
        .wait_timeout(Duration::from_secs(30))
        .await
        .expect("server drained in time");
}

fn remote(err: Error) -> Box<messaging::RemoteError> {
    match err {
        Error::Remote(r) => r,
        other => panic!("expected a remote error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------
// RPC: Rust client -> Python server
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_calls_python() {
    let s = setup().await;
    let topic = unique("call");
    let mut py = Peer::server(&s.url, &topic, "py1", &[]).await;
    let c = client(&s.transport, &topic);

    let sum: i64 = c
        .call(&Context::new(), "add", json!({"a": 20, "b": 22}))
        .await
        .unwrap();
    assert_eq!(sum, 42);
    let data = json!({"list": [1, 2.5, "three", null, true], "nested": {"ünïcode": "✓"}});
    let back: Value = c
        .call(&Context::new(), "echo", json!({ "data": data }))
        .await
        .unwrap();
    assert_eq!(back, data);

    let seen = py.take(2).await;
    assert_eq!(seen[0]["method"], "add");
    assert_eq!(seen[0]["args"], json!({"a": 20, "b": 22}));
    assert_eq!(seen[1]["method"], "echo");
    assert_eq!(seen[1]["args"]["data"], data);
    py.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_directed_call_reaches_only_that_python_server() {
    let s = setup().await;
    let topic = unique("directed");
    let mut py1 = Peer::server(&s.url, &topic, "py1", &[]).await;
    let mut py2 = Peer::server(&s.url, &topic, "py2", &[]).await;
    let c = client(&s.transport, &topic).prepare().server("py2");
    for i in 0..3 {
        let n: i64 = c
            .call(&Context::new(), "add", json!({"a": i, "b": 1}))
            .await
            .unwrap();
        assert_eq!(n, i + 1);
    }
    let got = py2.take(3).await;
    assert!(got.iter().all(|l| l["server"] == "py2"), "{got:?}");
    let stray = py1.drain(common::QUIET_PERIOD).await;
    assert!(
        stray.is_empty(),
        "py1 got requests meant for py2: {stray:?}"
    );
    py1.stop().await;
    py2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_load_balanced_calls_spread_over_python_servers() {
    let s = setup().await;
    let topic = unique("balanced");
    let mut py1 = Peer::server(&s.url, &topic, "py1", &[]).await;
    let mut py2 = Peer::server(&s.url, &topic, "py2", &[]).await;
    let c = client(&s.transport, &topic);
    let calls = 10;
    for i in 0..calls {
        let n: i64 = c
            .call(&Context::new(), "add", json!({"a": i, "b": 0}))
            .await
            .unwrap();
        assert_eq!(n, i);
    }
    let a = py1.drain(common::QUIET_PERIOD).await.len();
    let b = py2.drain(common::QUIET_PERIOD).await.len();
    assert_eq!(
        a + b,
        calls as usize,
        "every call handled exactly once ({a} + {b})"
    );
    assert!(a > 0 && b > 0, "both servers get calls: py1 {a}, py2 {b}");
    py1.stop().await;
    py2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_cast_reaches_python() {
    let s = setup().await;
    let topic = unique("cast");
    let mut py1 = Peer::server(&s.url, &topic, "py1", &[]).await;
    let mut py2 = Peer::server(&s.url, &topic, "py2", &[]).await;
    let ctx = Context::new().with("request_id", "req-cast");
    let c = client(&s.transport, &topic);
    c.cast(&ctx, "echo", json!({"data": "to anyone"}))
        .await
        .unwrap();
    c.prepare()
        .server("py2")
        .cast(&ctx, "echo", json!({"data": "to py2"}))
        .await
        .unwrap();
    let mut lines = py1.drain(common::QUIET_PERIOD * 2).await;
    lines.extend(py2.drain(common::QUIET_PERIOD).await);
    let mut data: Vec<&str> = lines
        .iter()
        .map(|l| l["args"]["data"].as_str().unwrap())
        .collect();
    data.sort();
    assert_eq!(data, ["to anyone", "to py2"], "{lines:?}");
    let to_py2 = lines
        .iter()
        .find(|l| l["args"]["data"] == "to py2")
        .unwrap();
    assert_eq!(to_py2["server"], "py2");
    assert!(
        lines.iter().all(|l| l["ctxt"]["request_id"] == "req-cast"),
        "{lines:?}"
    );
    py1.stop().await;
    py2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_fanout_reaches_every_python_server() {
    let s = setup().await;
    let topic = unique("fanout");
    let mut py1 = Peer::server(&s.url, &topic, "py1", &[]).await;
    let mut py2 = Peer::server(&s.url, &topic, "py2", &[]).await;
    client(&s.transport, &topic)
        .prepare()
        .fanout(true)
        .cast(&Context::new(), "echo", json!({"data": "everyone"}))
        .await
        .unwrap();
    for py in [&mut py1, &mut py2] {
        let line = py.next().await;
        assert_eq!(line["args"]["data"], "everyone");
        let more = py.drain(common::QUIET_PERIOD).await;
        assert!(
            more.is_empty(),
            "a fanout cast arrives once per server: {more:?}"
        );
    }
    py1.stop().await;
    py2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_version_and_namespace_mismatch_with_python() {
    let s = setup().await;
    let topic = unique("versions");
    let py = Peer::server(
        &s.url,
        &topic,
        "py1",
        &["--namespace", "calc", "--version", "2.3"],
    )
    .await;
    let c = client(&s.transport, &topic).prepare().namespace("calc");
    let ctx = Context::new();

    // Same major, lower minor: compatible.
    let n: i64 = c
        .prepare()
        .version("2.1")
        .call(&ctx, "add", json!({"a": 1, "b": 1}))
        .await
        .unwrap();
    assert_eq!(n, 2);
    for (namespace, version) in [("calc", "2.4"), ("calc", "3.0"), ("other", "2.0")] {
        let err = c
            .prepare()
            .namespace(namespace)
            .version(version)
            .call::<_, Value>(&ctx, "add", json!({"a": 1, "b": 1}))
            .await
            .unwrap_err();
        let r = remote(err);
        assert!(
            r.is("oslo_messaging.rpc.dispatcher", "UnsupportedVersion"),
            "{namespace} {version}: {r:?}"
        );
        assert!(r.message.contains(version), "{r:?}");
    }
    // The null namespace is not "calc" either.
    let err = client(&s.transport, &topic)
        .call::<_, Value>(&ctx, "add", json!({"a": 1, "b": 1}))
        .await
        .unwrap_err();
    assert!(remote(err).is("oslo_messaging.rpc.dispatcher", "UnsupportedVersion"));
    // A compatible endpoint without the method.
    let err = c
        .prepare()
        .version("2.0")
        .call::<_, Value>(&ctx, "multiply", json!({}))
        .await
        .unwrap_err();
    let r = remote(err);
    assert!(
        r.is("oslo_messaging.rpc.dispatcher", "NoSuchMethod"),
        "{r:?}"
    );
    assert!(r.message.contains("multiply"), "{r:?}");
    py.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_value_error_reaches_rust_with_class_and_module() {
    let s = setup().await;
    let topic = unique("pyerror");
    let py = Peer::server(&s.url, &topic, "py1", &[]).await;
    let err = client(&s.transport, &topic)
        .call::<_, Value>(&Context::new(), "fail", json!({"message": "bad flavor"}))
        .await
        .unwrap_err();
    let r = remote(err);
    assert_eq!(r.class, "ValueError", "{r:?}");
    assert_eq!(r.module, "builtins", "{r:?}");
    assert_eq!(r.message, "bad flavor");
    assert_eq!(r.args, vec![json!("bad flavor")]);
    assert!(
        r.traceback
            .iter()
            .any(|l| l.contains("raise ValueError(message)")),
        "the Python traceback travels: {:?}",
        r.traceback
    );
    py.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_context_round_trips_through_python() {
    let s = setup().await;
    let topic = unique("pyctx");
    let mut py = Peer::server(&s.url, &topic, "py1", &[]).await;
    let ctx = Context::new()
        .with("user", "alice")
        .with("project_id", "p-1")
        .with("request_id", "req-ctx")
        .with("roles", json!(["admin", "member"]))
        .with("is_admin", true);
    let back: serde_json::Map<String, Value> = client(&s.transport, &topic)
        .call(&ctx, "context", json!({}))
        .await
        .unwrap();
    for (k, v) in ctx.as_map() {
        assert_eq!(
            back.get(k),
            Some(v),
            "context key {k} came back as {:?}",
            back.get(k)
        );
    }
    // oslo adds what it unpacked from the request (no call monitor: null).
    assert_eq!(back.get("client_timeout"), Some(&Value::Null), "{back:?}");
    let seen = py.next().await;
    assert_eq!(seen["ctxt"]["user"], "alice");
    py.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_call_monitor_keeps_a_long_python_call_alive() {
    let s = setup().await;
    let topic = unique("pymonitor");
    let mut py = Peer::server(&s.url, &topic, "py1", &[]).await;
    let started = Instant::now();
    let slept: f64 = RpcClient::new(&s.transport, Target::topic(&topic))
        .timeout(Duration::from_secs(60))
        .call_monitor_timeout(Duration::from_secs(2))
        .call(&Context::new(), "sleep", json!({"seconds": 4}))
        .await
        .expect("heartbeats from the Python server keep the call alive");
    assert_eq!(slept, 4.0);
    assert!(started.elapsed() >= Duration::from_secs(4));
    let seen = py.next().await;
    assert_eq!(
        seen["ctxt"]["client_timeout"].as_f64(),
        Some(2.0),
        "the server saw _timeout: {seen}"
    );

    // Without a monitor, a timeout shorter than the call fails.
    let err = RpcClient::new(&s.transport, Target::topic(&topic))
        .timeout(Duration::from_secs(1))
        .call::<_, Value>(&Context::new(), "sleep", json!({"seconds": 3}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    py.stop().await;
}

// ---------------------------------------------------------------------------------
// RPC: Python client -> Rust server
// ---------------------------------------------------------------------------------

fn py_send(kind: &str, url: &str, topic: &str, extra: &[&str]) -> Vec<String> {
    let mut a = args([kind, "--url", url, "--topic", topic]);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_calls_rust() {
    let s = setup().await;
    let topic = unique("rcall");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = rust_server(&s.transport, &topic, "rs1", &tx, None).await;

    let run = run_peer(&py_send(
        "call",
        &s.url,
        &topic,
        &["add", r#"{"a": 20, "b": 22}"#],
    ))
    .await;
    assert_eq!(run.result(), &json!(42));
    let data = json!({"list": [1, 2.5, "three", null, true], "nested": {"ünïcode": "✓"}});
    let run = run_peer(&py_send(
        "call",
        &s.url,
        &topic,
        &["echo", &json!({ "data": data }).to_string()],
    ))
    .await;
    assert_eq!(run.result(), &data);

    let add = recv(&mut rx, "the Rust server's add").await;
    assert_eq!(
        (add.method.as_str(), add.args.clone()),
        ("add", json!({"a": 20, "b": 22}))
    );
    let echo = recv(&mut rx, "the Rust server's echo").await;
    assert_eq!(echo.args["data"], data);
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_directed_call_reaches_only_that_rust_server() {
    let s = setup().await;
    let topic = unique("rdirected");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rs1 = rust_server(&s.transport, &topic, "rs1", &tx, None).await;
    let rs2 = rust_server(&s.transport, &topic, "rs2", &tx, None).await;
    let run = run_peer(&py_send(
        "call",
        &s.url,
        &topic,
        &[
            "--server",
            "rs2",
            "--repeat",
            "3",
            "add",
            r#"{"a": 1, "b": 2}"#,
        ],
    ))
    .await;
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.lines, vec![json!({"result": 3}); 3]);
    let seen = drain(&mut rx, common::QUIET_PERIOD).await;
    let servers: Vec<&str> = seen.iter().map(|s| s.server.as_str()).collect();
    assert_eq!(servers, ["rs2"; 3]);
    stop(rs1).await;
    stop(rs2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_load_balanced_calls_spread_over_rust_servers() {
    let s = setup().await;
    let topic = unique("rbalanced");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rs1 = rust_server(&s.transport, &topic, "rs1", &tx, None).await;
    let rs2 = rust_server(&s.transport, &topic, "rs2", &tx, None).await;
    let run = run_peer(&py_send(
        "call",
        &s.url,
        &topic,
        &["--repeat", "10", "add", r#"{"a": 2, "b": 3}"#],
    ))
    .await;
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.lines.len(), 10, "{run:#?}");
    let seen = drain(&mut rx, common::QUIET_PERIOD).await;
    let on1 = seen.iter().filter(|s| s.server == "rs1").count();
    let on2 = seen.iter().filter(|s| s.server == "rs2").count();
    assert_eq!(on1 + on2, 10, "every call handled exactly once");
    assert!(
        on1 > 0 && on2 > 0,
        "both servers get calls: rs1 {on1}, rs2 {on2}"
    );
    stop(rs1).await;
    stop(rs2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_cast_reaches_rust() {
    let s = setup().await;
    let topic = unique("rcast");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rs1 = rust_server(&s.transport, &topic, "rs1", &tx, None).await;
    let rs2 = rust_server(&s.transport, &topic, "rs2", &tx, None).await;
    let ctx = r#"{"request_id": "req-pycast", "user": "bob"}"#;
    let run = run_peer(&py_send(
        "cast",
        &s.url,
        &topic,
        &["--context", ctx, "echo", r#"{"data": "to anyone"}"#],
    ))
    .await;
    assert_eq!(
        (run.code, run.lines.clone()),
        (0, vec![json!({"sent": true})]),
        "{run:#?}"
    );
    let run = run_peer(&py_send(
        "cast",
        &s.url,
        &topic,
        &[
            "--server",
            "rs1",
            "--context",
            ctx,
            "echo",
            r#"{"data": "to rs1"}"#,
        ],
    ))
    .await;
    assert_eq!(run.code, 0, "{run:#?}");
    let mut seen = vec![
        recv(&mut rx, "first cast").await,
        recv(&mut rx, "second cast").await,
    ];
    seen.extend(drain(&mut rx, common::QUIET_PERIOD).await);
    assert_eq!(seen.len(), 2, "{seen:?}");
    let directed = seen
        .iter()
        .find(|s| s.args["data"] == "to rs1")
        .expect("directed cast");
    assert_eq!(directed.server, "rs1");
    assert!(seen.iter().any(|s| s.args["data"] == "to anyone"));
    for s in &seen {
        assert_eq!(s.ctx.get("request_id"), Some(&json!("req-pycast")));
        assert_eq!(s.ctx.get("user"), Some(&json!("bob")));
    }
    stop(rs1).await;
    stop(rs2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_fanout_reaches_every_rust_server() {
    let s = setup().await;
    let topic = unique("rfanout");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rs1 = rust_server(&s.transport, &topic, "rs1", &tx, None).await;
    let rs2 = rust_server(&s.transport, &topic, "rs2", &tx, None).await;
    let run = run_peer(&py_send(
        "cast",
        &s.url,
        &topic,
        &["--fanout", "echo", r#"{"data": "everyone"}"#],
    ))
    .await;
    assert_eq!(run.code, 0, "{run:#?}");
    let mut seen = vec![
        recv(&mut rx, "fanout copy 1").await,
        recv(&mut rx, "fanout copy 2").await,
    ];
    seen.extend(drain(&mut rx, common::QUIET_PERIOD).await);
    let mut servers: Vec<&str> = seen.iter().map(|s| s.server.as_str()).collect();
    servers.sort();
    assert_eq!(servers, ["rs1", "rs2"], "one copy per server: {seen:?}");
    assert!(seen.iter().all(|s| s.args["data"] == "everyone"));
    stop(rs1).await;
    stop(rs2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sees_rust_version_and_namespace_mismatch() {
    let s = setup().await;
    let topic = unique("rversions");
    let (tx, _rx) = mpsc::unbounded_channel();
    let server = rust_server(&s.transport, &topic, "rs1", &tx, Some(("calc", "2.3"))).await;
    let add = r#"{"a": 1, "b": 1}"#;

    let run = run_peer(&py_send(
        "call",
        &s.url,
        &topic,
        &["--namespace", "calc", "--version", "2.1", "add", add],
    ))
    .await;
    assert_eq!(run.result(), &json!(2));
    for (namespace, version) in [("calc", "2.4"), ("calc", "3.0"), ("other", "2.0")] {
        let run = run_peer(&py_send(
            "call",
            &s.url,
            &topic,
            &["--namespace", namespace, "--version", version, "add", add],
        ))
        .await;
        let e = run.error(1);
        // A module the client does not allow: oslo's RemoteError with the class name.
        assert_eq!(
            e["class"], "UnsupportedVersion",
            "{namespace} {version}: {run:#?}"
        );
        assert_eq!(e["remote"], true);
        assert!(e["message"].as_str().unwrap().contains(version), "{e}");
    }
    // Allowed, the client rebuilds oslo's own exception class from the module name.
    let run = run_peer(&py_send(
        "call",
        &s.url,
        &topic,
        &[
            "--allowed-remote-exmods",
            "oslo_messaging.rpc.dispatcher",
            "--namespace",
            "calc",
            "--version",
            "2.9",
            "add",
            add,
        ],
    ))
    .await;
    let e = run.error(1);
    assert_eq!(
        (e["class"].as_str(), e["module"].as_str()),
        (
            Some("UnsupportedVersion"),
            Some("oslo_messaging.rpc.dispatcher")
        ),
        "{run:#?}"
    );
    let run = run_peer(&py_send(
        "call",
        &s.url,
        &topic,
        &["--namespace", "calc", "--version", "2.0", "multiply", "{}"],
    ))
    .await;
    let e = run.error(1);
    assert_eq!(e["class"], "NoSuchMethod", "{run:#?}");
    assert!(e["message"].as_str().unwrap().contains("multiply"), "{e}");
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_value_error_reaches_python_as_builtin_value_error() {
    let s = setup().await;
    let topic = unique("rerror");
    let (tx, _rx) = mpsc::unbounded_channel();
    let server = rust_server(&s.transport, &topic, "rs1", &tx, None).await;
    let run = run_peer(&py_send(
        "call",
        &s.url,
        &topic,
        &["fail", r#"{"message": "bad flavor"}"#],
    ))
    .await;
    let e = run.error(1);
    assert_eq!(e["class"], "ValueError", "{run:#?}");
    assert_eq!(e["module"], "builtins", "{run:#?}");
    assert_eq!(e["message"], "bad flavor", "{run:#?}");
    assert_eq!(e["remote"], true, "{run:#?}");
    assert!(
        e["mro"]
            .as_array()
            .unwrap()
            .contains(&json!("builtins.ValueError")),
        "Python can `except ValueError`: {e}"
    );
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_context_round_trips_through_rust() {
    let s = setup().await;
    let topic = unique("rctx");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = rust_server(&s.transport, &topic, "rs1", &tx, None).await;
    let ctx = json!({"user": "alice", "project_id": "p-1", "request_id": "req-ctx", "roles": ["admin"], "is_admin": true});
    let run = run_peer(&py_send(
        "call",
        &s.url,
        &topic,
        &["--context", &ctx.to_string(), "context"],
    ))
    .await;
    let back = run.result();
    for (k, v) in ctx.as_object().unwrap() {
        assert_eq!(back.get(k), Some(v), "context key {k}: {back}");
    }
    let seen = recv(&mut rx, "the context call").await;
    for (k, v) in ctx.as_object().unwrap() {
        assert_eq!(
            seen.ctx.get(k),
            Some(v),
            "the Rust endpoint's context key {k}: {:?}",
            seen.ctx
        );
    }
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_call_monitor_keeps_a_long_rust_call_alive() {
    let s = setup().await;
    let topic = unique("rmonitor");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = rust_server(&s.transport, &topic, "rs1", &tx, None).await;
    let started = Instant::now();
    let run = run_peer(&py_send(
        "call",
        &s.url,
        &topic,
        &[
            "--timeout",
            "60",
            "--call-monitor-timeout",
            "2",
            "sleep",
            r#"{"seconds": 4}"#,
        ],
    ))
    .await;
    assert_eq!(
        run.result(),
        &json!(4),
        "heartbeats from the Rust server keep the call alive"
    );
    assert!(started.elapsed() >= Duration::from_secs(4));
    let seen = recv(&mut rx, "the sleep call").await;
    assert_eq!(seen.ctx.client_timeout(), Some(2.0), "{:?}", seen.ctx);

    // Without a monitor, a timeout shorter than the call fails with exit code 2.
    let run = run_peer(&py_send(
        "call",
        &s.url,
        &topic,
        &["--timeout", "1", "sleep", r#"{"seconds": 3}"#],
    ))
    .await;
    assert_eq!(run.error(2)["class"], "MessagingTimeout");
    stop(server).await;
}

// ---------------------------------------------------------------------------------
// RPC: Python and Rust side by side
// ---------------------------------------------------------------------------------

/// A Rust server joins the Python servers of a topic: it declares the same queues
/// (a flag mismatch would fail with PRECONDITION_FAILED), shares the load and gets
/// fanout casts; clients of both languages reach both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_servers_share_a_topic() {
    let s = setup().await;
    let topic = unique("mixed");
    let mut py = Peer::server(&s.url, &topic, "py1", &[]).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rs = rust_server(&s.transport, &topic, "rs1", &tx, None).await;

    let c = client(&s.transport, &topic);
    for i in 0..10 {
        let n: i64 = c
            .call(&Context::new(), "add", json!({"a": i, "b": 1}))
            .await
            .unwrap();
        assert_eq!(n, i + 1);
    }
    let run = run_peer(&py_send(
        "call",
        &s.url,
        &topic,
        &["--repeat", "10", "add", r#"{"a": 1, "b": 1}"#],
    ))
    .await;
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.lines, vec![json!({"result": 2}); 10]);
    let on_py = py.drain(common::QUIET_PERIOD).await.len();
    let on_rs = drain(&mut rx, Duration::ZERO).await.len();
    assert_eq!(
        on_py + on_rs,
        20,
        "every call handled once: py {on_py}, rs {on_rs}"
    );
    assert!(
        on_py > 0 && on_rs > 0,
        "both share the load: py {on_py}, rs {on_rs}"
    );

    c.prepare()
        .fanout(true)
        .cast(&Context::new(), "echo", json!({"data": "from rust"}))
        .await
        .unwrap();
    let run = run_peer(&py_send(
        "cast",
        &s.url,
        &topic,
        &["--fanout", "echo", r#"{"data": "from python"}"#],
    ))
    .await;
    assert_eq!(run.code, 0, "{run:#?}");
    let mut py_got: Vec<Value> = py
        .take(2)
        .await
        .into_iter()
        .map(|l| l["args"]["data"].clone())
        .collect();
    let mut rs_got: Vec<Value> = vec![
        recv(&mut rx, "fanout 1").await.args["data"].clone(),
        recv(&mut rx, "fanout 2").await.args["data"].clone(),
    ];
    for got in [&mut py_got, &mut rs_got] {
        got.sort_by_key(|v| v.to_string());
        assert_eq!(*got, [json!("from python"), json!("from rust")]);
    }
    stop(rs).await;
    py.stop().await;
}

/// Servers and clients on a non-default exchange (a service's `control_exchange`)
/// find each other in both directions, and the default exchange does not reach them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_exchange_works_both_ways() {
    let s = setup().await;
    let topic = unique("exchange");
    let exchange = unique("nova");
    let py = Peer::server(&s.url, &topic, "py1", &["--exchange", &exchange]).await;
    let n: i64 = client(&s.transport, &topic)
        .prepare()
        .exchange(&exchange)
        .call(&Context::new(), "add", json!({"a": 1, "b": 2}))
        .await
        .unwrap();
    assert_eq!(n, 3);
    let err = client(&s.transport, &topic)
        .timeout(Duration::from_secs(2))
        .call::<_, Value>(&Context::new(), "add", json!({"a": 1, "b": 2}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout(_)),
        "the default exchange has no server: {err:?}"
    );
    py.stop().await;

    let rtopic = unique("rexchange");
    let (tx, _rx) = mpsc::unbounded_channel();
    let rs = RpcServer::new(
        &s.transport,
        Target::topic(&rtopic).server("rs1").exchange(&exchange),
    )
    .endpoint(recording_endpoint("rs1", tx))
    .start()
    .await
    .unwrap();
    let run = run_peer(&py_send(
        "call",
        &s.url,
        &rtopic,
        &["--exchange", &exchange, "add", r#"{"a": 2, "b": 2}"#],
    ))
    .await;
    assert_eq!(run.result(), &json!(4));
    stop(rs).await;
}

// ---------------------------------------------------------------------------------
// Notifications: Python notifier -> Rust listener
// ---------------------------------------------------------------------------------

// Notifications of both formats, from Python by priority (and to Python, below): the
// tests that read the same over Kafka.
common::notification_interop_tests!(setup: setup().await, transport: "rabbit", pool: false);

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

// ---------------------------------------------------------------------------------
// Notifications: Rust notifier -> Python listener
// ---------------------------------------------------------------------------------

// `rust_messaging_v1_notifications_reach_python` and
// `rust_messaging_v2_notifications_reach_python` come from
// `common::notification_interop_tests!` above.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_notifications_reach_a_python_pool_with_a_filter() {
    let s = setup().await;
    let topic = unique("rspool");
    let mut listener = Peer::start(py_listen(
        &s.url,
        &topic,
        Some(&unique("pool")),
        "info",
        &[
            "--event-type-filter",
            r"compute\.instance\.",
            "--publisher-filter",
            r"^compute\.",
            "--timeout",
            "60",
        ],
    ))
    .await;
    let notifier = Notifier::new(&s.transport, "compute.rs1").topics([topic.as_str()]);
    let ctx = Context::new();
    let other_publisher = notifier.prepare().publisher_id("network.rs1");
    for (notifier, event_type, n) in [
        (&notifier, "image.upload", 1),
        (&other_publisher, "compute.instance.create.end", 2),
        (&notifier, "compute.instance.create.end", 3),
    ] {
        rust_notifies(notifier, &ctx, event_type, Priority::Info, json!({"n": n})).await;
    }
    let got = listener.next().await;
    assert_eq!(
        got["payload"],
        json!({"n": 3}),
        "only the matching one: {got}"
    );
    let rest = listener.drain(common::QUIET_PERIOD).await;
    assert!(rest.is_empty(), "filtered out: {rest:?}");
}

/// With `use_queue_manager` on both sides (reply and fanout queues named
/// `<host>:<process>:<N>`, Python's counter under an oslo.concurrency lock), a Python
/// client calls and fans out to a Rust server and a Rust client calls a Python server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_manager_works_both_ways() {
    let s = setup().await;
    let topic = unique("qm");
    let locks = std::env::temp_dir().join(unique("qm-locks"));
    std::fs::create_dir_all(&locks).unwrap();
    let ini = locks.join("oslo.ini");
    std::fs::write(
        &ini,
        format!("[oslo_concurrency]\nlock_path = {}\n", locks.display()),
    )
    .unwrap();
    let ini = ini.to_string_lossy().into_owned();
    let qm = |process: &str| {
        let url = common::with_query(&s.url, "use_queue_manager", "true");
        let url = common::with_query(&url, "hostname", "h1");
        common::with_query(&url, "processname", process)
    };
    let rust_process = unique("rs");
    let transport = messaging::registry()
        .transport(&qm(&rust_process), &messaging::Config::default())
        .await
        .expect("a transport with the queue manager");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = rust_server(&transport, &topic, "rs1", &tx, None).await;

    let py_process = unique("py");
    let py_url = qm(&py_process);
    let mut call = py_send("call", &py_url, &topic, &["add", r#"{"a": 1, "b": 2}"#]);
    call.extend(args(["--config-file", &ini]));
    assert_eq!(run_peer(&call).await.result(), &json!(3));
    assert_eq!(recv(&mut rx, "the Python call").await.method, "add");
    let mut fanout = py_send(
        "cast",
        &py_url,
        &topic,
        &["--fanout", "echo", r#"{"data": 1}"#],
    );
    fanout.extend(args(["--config-file", &ini]));
    assert_eq!(run_peer(&fanout).await.code, 0);
    assert_eq!(recv(&mut rx, "the Python fanout").await.args["data"], 1);

    let mut python = Peer::server(&py_url, &topic, "py1", &["--config-file", &ini]).await;
    let answer: Value = client(&transport, &topic)
        .prepare()
        .server("py1")
        .call(&Context::new(), "echo", json!({"data": "qm"}))
        .await
        .expect("a Rust call with the queue manager to a Python server with it");
    assert_eq!(answer, json!("qm"));
    assert_eq!(python.next().await["method"], "echo");
    python.stop().await;
    stop(server).await;
    transport.cleanup().await;
    for process in [rust_process, py_process] {
        let _ = std::fs::remove_file(format!("/dev/shm/h1_{process}_qmanager"));
    }
    let _ = std::fs::remove_dir_all(&locks);
}

/// With `rabbit_stream_fanout` on both sides, a topic's fanout goes through one stream
/// queue, `<topic>_fanout`, which a Rust and a Python server both read: a fanout cast from
/// Python reaches both, and one from Rust too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_fanout_works_both_ways() {
    let s = setup().await;
    let topic = unique("stream");
    let mut url = s.url.clone();
    for (key, value) in [
        ("rabbit_stream_fanout", "true"),
        ("rabbit_transient_quorum_queue", "true"),
        ("rabbit_qos_prefetch_count", "10"),
    ] {
        if !url.contains(&format!("{key}=")) {
            url = common::with_query(&url, key, value);
        }
    }
    let transport = messaging::registry()
        .transport(&url, &messaging::Config::default())
        .await
        .expect("a transport with stream fanout");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = rust_server(&transport, &topic, "rs1", &tx, None).await;
    let mut python = Peer::server(&url, &topic, "py1", &[]).await;

    let cast = py_send(
        "cast",
        &url,
        &topic,
        &["--fanout", "echo", r#"{"data": "py"}"#],
    );
    assert_eq!(run_peer(&cast).await.code, 0);
    assert_eq!(recv(&mut rx, "Python's fanout").await.args["data"], "py");
    assert_eq!(python.next().await["args"]["data"], "py");

    client(&transport, &topic)
        .prepare()
        .fanout(true)
        .cast(&Context::new(), "echo", json!({"data": "rs"}))
        .await
        .expect("a Rust fanout cast");
    assert_eq!(recv(&mut rx, "Rust's fanout").await.args["data"], "rs");
    assert_eq!(python.next().await["args"]["data"], "rs");
    assert!(drain(&mut rx, common::QUIET_PERIOD).await.is_empty());

    python.stop().await;
    stop(server).await;
    transport.cleanup().await;
}
