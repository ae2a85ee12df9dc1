//! RPC: Rust client -> Python server

use super::*;

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
