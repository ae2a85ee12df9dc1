//! A Rust service with default options next to Python services configured for quorum
//! queues (`rabbit_quorum_queue` and `rabbit_transient_quorum_queue`, what Python
//! oslo.messaging needs on RabbitMQ 4.3), on RabbitMQ 4 configured as 4.3 behaves by
//! default (`scripts/services rabbit4`), in its virtual host `quorum`. The Python side
//! declares the shared queues as quorum queues; the Rust side joins them as they are.
//! The broker is `RABBIT4_URL` (default `rabbit://guest:guest@127.0.0.1:5674/quorum`).

mod common;

use std::time::Duration;

use common::{Peer, args, drain, recording_endpoint, recv, run_peer, rust_notifies, unique};
use messaging::notify::{Notifier, Priority};
use messaging::{Config, Context, RpcClient, RpcServer, Target, Transport};
use serde_json::json;
use tokio::sync::mpsc;

/// The RabbitMQ 4 virtual host of these tests, as the Rust side opens it (defaults).
fn rust_url() -> String {
    std::env::var("RABBIT4_URL")
        .unwrap_or_else(|_| "rabbit://guest:guest@127.0.0.1:5674/quorum".to_string())
}

/// The same, with the options Python services need there.
fn python_url() -> String {
    let url = common::with_query(&rust_url(), "rabbit_quorum_queue", "true");
    common::with_query(&url, "rabbit_transient_quorum_queue", "true")
}

/// Checks RabbitMQ 4 and the Python peer, takes a slot, opens a default transport.
async fn setup() -> (Transport, tokio::sync::SemaphorePermit<'static>) {
    let url = rust_url();
    common::require_tcp(
        &url,
        5674,
        "RabbitMQ 4 (scripts/services rabbit4)",
        "RABBIT4_URL",
    )
    .await;
    common::require_python();
    let slot = common::slot().await;
    let transport = messaging::registry()
        .transport(&url, &Config::default())
        .await
        .expect("a transport with default options to RabbitMQ 4");
    (transport, slot)
}

/// `name<TAB>type` of the queues of the vhost `quorum` whose names start with `prefix`.
fn queue_types(prefix: &str) -> Vec<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/services");
    let out = std::process::Command::new(script)
        .args([
            "rabbit4-ctl",
            "list_queues",
            "-p",
            "quorum",
            "--no-table-headers",
            "-q",
            "name",
            "type",
        ])
        .output()
        .expect("scripts/services rabbit4-ctl runs");
    assert!(out.status.success(), "{out:?}");
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// A Python server declares the topic queue as a quorum queue and the fanout exchange
/// durable; a Rust server with default options joins both, so calls from either side
/// reach either server and a fanout cast reaches both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_server_with_defaults_joins_the_quorum_queues_of_python_servers() {
    let (transport, _slot) = setup().await;
    let topic = unique("mixed4");
    let mut python = Peer::server(&python_url(), &topic, "py1", &[]).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = RpcServer::new(&transport, Target::topic(&topic).server("rs1"))
        .endpoint(recording_endpoint("rs1", tx))
        .start()
        .await
        .expect("a Rust server with default options starts next to the Python one");
    assert_eq!(
        queue_types(&format!("{topic}\t")),
        [format!("{topic}\tquorum")],
        "the shared topic queue stays the quorum queue Python declared"
    );

    let client = RpcClient::new(&transport, Target::topic(&topic)).timeout(Duration::from_secs(30));
    let ctx = Context::new();
    let answer: serde_json::Value = client
        .prepare()
        .server("py1")
        .call(&ctx, "echo", json!({"data": "to python"}))
        .await
        .expect("a Rust call to the Python server");
    assert_eq!(answer, json!("to python"));
    assert_eq!(python.next().await["method"], "echo");
    let answer: serde_json::Value = client
        .prepare()
        .server("rs1")
        .call(&ctx, "echo", json!({"data": "to rust"}))
        .await
        .expect("a Rust call to the Rust server");
    assert_eq!(answer, json!("to rust"));
    assert_eq!(recv(&mut rx, "the directed call").await.method, "echo");

    let run = run_peer(&args([
        "call",
        "--url",
        &python_url(),
        "--topic",
        &topic,
        "--server",
        "rs1",
        "--timeout",
        "30",
        "add",
        r#"{"a": 2, "b": 3}"#,
    ]))
    .await;
    assert_eq!(run.result(), &json!(5), "a Python call to the Rust server");
    assert_eq!(recv(&mut rx, "the Python call").await.method, "add");

    client
        .prepare()
        .fanout(true)
        .cast(&ctx, "echo", json!({"data": "everyone"}))
        .await
        .expect("a fanout cast");
    assert_eq!(
        recv(&mut rx, "the fanout cast").await.args["data"],
        "everyone"
    );
    assert_eq!(python.next().await["args"]["data"], "everyone");
    assert!(drain(&mut rx, common::QUIET_PERIOD).await.is_empty());

    server.stop().await;
    server.wait().await.expect("wait");
    python.stop().await;
    transport.cleanup().await;
}

/// A Python listener declares the notification queue as a quorum queue; a Rust
/// notifier with default options sends into it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_notifications_with_defaults_reach_a_python_quorum_listener() {
    let (transport, _slot) = setup().await;
    let topic = unique("mixed4n");
    let mut listener = Peer::start(common::py_listen(
        &python_url(),
        &topic,
        None,
        "info",
        &["--count", "2", "--timeout", "60"],
    ))
    .await;
    assert_eq!(
        queue_types(&format!("{topic}.info\t")),
        [format!("{topic}.info\tquorum")]
    );
    let notifier = Notifier::new(&transport, "compute.rs1").topics([topic.as_str()]);
    for n in 1..=2 {
        rust_notifies(
            &notifier,
            &Context::new(),
            "compute.instance.create.end",
            Priority::Info,
            json!({"n": n}),
        )
        .await;
    }
    let got = [listener.next().await, listener.next().await];
    let payloads: Vec<_> = got.iter().map(|l| l["payload"]["n"].clone()).collect();
    assert_eq!(payloads, [json!(1), json!(2)], "{got:?}");
    let (code, rest) = listener.finish().await;
    assert_eq!(code, 0, "the Python listener ends after its two: {rest:?}");
    transport.cleanup().await;
}
