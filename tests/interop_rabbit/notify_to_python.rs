//! Notifications: Rust notifier -> Python listener

use super::*;

// `rust_messaging_v1_notifications_reach_python` and
// `rust_messaging_v2_notifications_reach_python` come from
// `common::notification_interop_tests!` in `main.rs`.

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
