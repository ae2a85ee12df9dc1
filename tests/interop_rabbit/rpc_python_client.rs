//! RPC: Python client -> Rust server

use super::*;

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
