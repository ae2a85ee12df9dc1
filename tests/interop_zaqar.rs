//! Interop of the Rust Zaqar driver with the real python-zaqarclient (4.7.0) over the
//! real Zaqar server, both directions, for notifications:
//!
//! - a notification the Python client posts, built as oslo.messaging's `messagingv2`
//!   notifier builds it (the 2.0 envelope, the context flattened into `_context_*`
//!   keys), reaches a Rust `NotificationListener` on its topic;
//! - a Rust `Notifier`'s notification is claimed and read by the Python client, and is
//!   the same oslo envelope;
//! - projects (`X-Project-ID`, the transport URL's path) isolate: what Python posts in
//!   one project never reaches a listener of another on the same topic.
//!
//! The Python side is `tests/peers/zaqar_peer.py`, run by `<repo>/.venv-zaqar/bin/python`
//! (`ZAQAR_PEER_PYTHON` overrides it); the server is `ZAQAR_URL` (default
//! `zaqar://127.0.0.1:8888`), without Keystone. Both come from `scripts/services zaqar`;
//! when either is missing the tests fail saying so, they never skip. Every test uses
//! projects and topics of its own (topics of `[A-Za-z0-9-]` only, so that the queue of
//! `<topic>.info` is plainly `<topic>__info`).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use messaging::driver_zaqar::naming;
use messaging::notify::{Notification, NotificationListener, Notifier, Priority};
use messaging::{Config, Context, Target, Transport};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::mpsc;

/// The server of the tests unless `ZAQAR_URL` says otherwise.
const DEFAULT_ZAQAR_URL: &str = "zaqar://127.0.0.1:8888";
/// Poll quickly, so that a notification is taken within milliseconds of its post.
const TEST_PACING: &str = "poll_interval=0.01&idle_poll_interval=0.02";
/// How long one expected notification may take to arrive.
const MESSAGE_LIMIT: Duration = Duration::from_secs(30);
/// How long a one-shot peer command may run (it imports zaqarclient first).
const COMMAND_LIMIT: Duration = Duration::from_secs(90);
/// How long to watch for a notification that must not arrive.
const QUIET_PERIOD: Duration = Duration::from_millis(1500);
/// What fixes a missing server or virtualenv.
const FIX: &str = "run scripts/services zaqar (it installs zaqar-server and python-zaqarclient \
                   into .venv-zaqar and starts the server on 127.0.0.1:8888)";

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// `ZAQAR_URL`, else [`DEFAULT_ZAQAR_URL`], without a trailing slash.
fn server_url() -> String {
    std::env::var("ZAQAR_URL")
        .unwrap_or_else(|_| DEFAULT_ZAQAR_URL.to_string())
        .trim_end_matches('/')
        .to_string()
}

/// `host:port` of the server.
fn server_address() -> String {
    let url = server_url();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:8888")
    }
}

/// `http://host:port` for the Python client.
fn http_endpoint() -> String {
    format!("http://{}", server_address())
}

/// The URL of a Rust transport in `project`.
fn transport_url(project: &str) -> String {
    format!("{}/{project}?{TEST_PACING}", server_url())
}

/// The peer's interpreter: `ZAQAR_PEER_PYTHON`, else `<repo>/.venv-zaqar/bin/python`.
fn python() -> PathBuf {
    std::env::var_os("ZAQAR_PEER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-zaqar/bin/python"))
}

fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/zaqar_peer.py")
}

/// A name of `[a-z0-9-]` no other test or run uses: the process id, the time in
/// nanoseconds and a counter, in hex.
fn unique(what: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("interop-{what}-{:x}-{nanos:x}-{n:x}", std::process::id())
}

/// A topic whose info queue is `<topic>__info` (no escaping), checked against the
/// driver's naming.
fn topic_and_queue(what: &str) -> (String, String) {
    let topic = unique(what);
    let queue = naming::notification_queue(&format!("{topic}.info"), None);
    assert_eq!(
        queue,
        format!("{topic}__info"),
        "a topic of [A-Za-z0-9-] maps to <topic>__info unescaped"
    );
    (topic, queue)
}

/// Fails, naming `scripts/services zaqar`, unless the server answers `GET /v2/ping`
/// with 204.
async fn require_server() {
    let address = server_address();
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(&address).await?;
        let request = format!(
            "GET /v2/ping HTTP/1.0\r\nHost: {address}\r\n\
             Client-ID: 5f0c6f5e-3a4b-4c1d-9e2f-0a1b2c3d4e5f\r\nX-Project-ID: probe\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        // The status line is all it takes; the connection may stay open after it.
        let mut answer = Vec::new();
        let mut buf = [0u8; 512];
        while !answer.contains(&b'\n') {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer).into_owned())
    };
    match tokio::time::timeout(Duration::from_secs(10), probe).await {
        Ok(Ok(answer))
            if answer.starts_with("HTTP/1.")
                && answer.get(9..).is_some_and(|s| s.starts_with("204")) => {}
        Ok(Ok(answer)) => panic!(
            "the server on {address} is not Zaqar: GET /v2/ping answered {:?}; {FIX}, or \
             set ZAQAR_URL",
            answer.lines().next().unwrap_or_default()
        ),
        Ok(Err(e)) => panic!("no Zaqar server on {address} ({e}); {FIX}, or set ZAQAR_URL"),
        Err(_) => panic!("the Zaqar server on {address} did not answer within 10 s; {FIX}"),
    }
}

/// Fails, naming `scripts/services zaqar`, unless the peer's interpreter exists and
/// imports zaqarclient.
async fn require_python() {
    let python = python();
    if !python.exists() {
        panic!(
            "the Zaqar peer's interpreter {} does not exist; {FIX} (ZAQAR_PEER_PYTHON \
             overrides the path)",
            python.display()
        );
    }
    let run = tokio::time::timeout(
        COMMAND_LIMIT,
        Command::new(&python)
            .args(["-c", "import zaqarclient.queues.v2.client"])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{} -c 'import zaqarclient' hangs", python.display()))
    .unwrap_or_else(|e| panic!("cannot run {}: {e}; {FIX}", python.display()));
    if !run.status.success() {
        panic!(
            "{} cannot import python-zaqarclient ({}); {FIX}",
            python.display(),
            String::from_utf8_lossy(&run.stderr).trim()
        );
    }
}

/// Checks the server and the Python peer, then opens a transport in `project` through
/// the facade's registry.
async fn setup(project: &str) -> Transport {
    require_server().await;
    require_python().await;
    open(project).await
}

/// A transport in `project` through `messaging::registry()`.
async fn open(project: &str) -> Transport {
    let url = transport_url(project);
    messaging::registry()
        .transport(&url, &Config::default())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot open a transport for {url}: {e}\n(the zaqar driver must be registered \
                 in messaging::registry())"
            )
        })
}

/// What a finished peer command printed.
#[derive(Debug)]
struct PeerRun {
    code: i32,
    lines: Vec<Value>,
    #[allow(dead_code)] // read in failure messages, through Debug
    stderr: String,
}

/// Runs `zaqar_peer.py <args>` to completion within [`COMMAND_LIMIT`].
async fn run_peer(args: &[&str]) -> PeerRun {
    let output = tokio::time::timeout(
        COMMAND_LIMIT,
        Command::new(python())
            .arg("-u")
            .arg(peer_script())
            .args(args)
            .arg("--url")
            .arg(http_endpoint())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("zaqar_peer.py {args:?} ran longer than {COMMAND_LIMIT:?}"))
    .unwrap_or_else(|e| panic!("cannot run {}: {e}; {FIX}", python().display()));
    PeerRun {
        code: output.status.code().unwrap_or(-1),
        lines: String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| Value::String(l.to_string())))
            .collect(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Posts an oslo messagingv2 notification with the Python client and returns its
/// `message_id`.
async fn python_posts(project: &str, queue: &str, event: &str, payload: &Value) -> String {
    let payload = payload.to_string();
    let run = run_peer(&[
        "post",
        "--project",
        project,
        "--queue",
        queue,
        "--event",
        event,
        "--payload",
        &payload,
        "--publisher-id",
        PY_PUBLISHER,
        "--context",
        r#"{"user": "alice", "request_id": "req-zaqar-interop"}"#,
    ])
    .await;
    assert_eq!(run.code, 0, "the Python client did not post: {run:#?}");
    run.lines
        .first()
        .and_then(|l| l["posted"].as_str())
        .unwrap_or_else(|| panic!("no message id printed: {run:#?}"))
        .to_string()
}

/// The publisher of the Python notifications.
const PY_PUBLISHER: &str = "compute.zaqar-py1";

/// A started Rust listener on `topic` with an info handler forwarding to `tx`.
async fn rust_listener(
    transport: &Transport,
    topic: &str,
    tx: &mpsc::UnboundedSender<Notification>,
) -> NotificationListener {
    let tx = tx.clone();
    NotificationListener::new(transport, [Target::topic(topic)])
        .on(Priority::Info, move |n: Notification| {
            let _ = tx.send(n);
            std::future::ready(())
        })
        .start()
        .await
        .unwrap_or_else(|e| panic!("the Rust listener on {topic} did not start: {e}"))
}

async fn stop_listener(listener: NotificationListener) {
    listener.stop().await;
    listener
        .wait_timeout(Duration::from_secs(30))
        .await
        .expect("the listener stopped in time");
}

/// The next notification within [`MESSAGE_LIMIT`].
async fn recv(rx: &mut mpsc::UnboundedReceiver<Notification>, what: &str) -> Notification {
    match tokio::time::timeout(MESSAGE_LIMIT, rx.recv()).await {
        Ok(Some(n)) => n,
        Ok(None) => panic!("{what}: the channel closed"),
        Err(_) => panic!("{what}: nothing within {MESSAGE_LIMIT:?}"),
    }
}

/// Everything that arrives within `period`.
async fn drain(
    rx: &mut mpsc::UnboundedReceiver<Notification>,
    period: Duration,
) -> Vec<Notification> {
    let deadline = tokio::time::Instant::now() + period;
    let mut out = Vec::new();
    while let Ok(Some(n)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        out.push(n);
    }
    out
}

// ---------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------

/// A notification python-zaqarclient posts as oslo's messagingv2 notifier would reaches
/// a Rust listener on its topic whole: event type, payload, publisher, priority, message
/// id and the flattened context.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_posted_notification_reaches_rust_listener() {
    let project = unique("zq-proj");
    let transport = setup(&project).await;
    let (topic, queue) = topic_and_queue("zq-py2rs");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let listener = rust_listener(&transport, &topic, &tx).await;

    let payload = json!({"instance_id": "i-42", "size": 3, "tags": ["a", "b"]});
    let message_id = python_posts(&project, &queue, "compute.instance.create.end", &payload).await;

    let n = recv(&mut rx, "the Python notification").await;
    assert_eq!(n.event_type, "compute.instance.create.end", "{n:#?}");
    assert_eq!(n.payload, payload, "{n:#?}");
    assert_eq!(n.publisher_id, PY_PUBLISHER, "{n:#?}");
    assert_eq!(n.priority, Priority::Info, "{n:#?}");
    assert_eq!(n.metadata.message_id, message_id, "{n:#?}");
    assert!(!n.metadata.timestamp.is_empty(), "{n:#?}");
    assert_eq!(n.context.get("user"), Some(&json!("alice")), "{n:#?}");
    assert_eq!(
        n.context.get("request_id"),
        Some(&json!("req-zaqar-interop")),
        "{n:#?}"
    );
    let extra = drain(&mut rx, Duration::from_millis(300)).await;
    assert!(extra.is_empty(), "delivered once: {extra:#?}");
    stop_listener(listener).await;
}

/// What a Rust notifier posts is claimed by python-zaqarclient from `<topic>__info` and
/// is oslo's messagingv2 notification: the 2.0 envelope (the peer checks it) around the
/// event type, payload, publisher, priority `INFO`, a uuid message id, a timestamp and
/// the context flattened into `_context_*` keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_notification_is_claimed_by_python_client() {
    let project = unique("zq-proj");
    let transport = setup(&project).await;
    let (topic, queue) = topic_and_queue("zq-rs2py");
    let notifier = Notifier::new(&transport, "image.zaqar-rs1").topics([topic.as_str()]);
    let ctx = Context::new()
        .with("user", "bob")
        .with("request_id", "req-zaqar-rs");
    let payload = json!({"image_id": "img-7", "bytes": 1024});
    notifier
        .try_notify(&ctx, "image.upload", Priority::Info, payload.clone())
        .await
        .unwrap_or_else(|e| panic!("the Rust notifier did not send: {e}"));

    let run = python_claims_one(&project, &queue, "30").await;
    assert_eq!(run.code, 0, "the Python client did not claim it: {run:#?}");
    assert_eq!(run.lines.len(), 1, "{run:#?}");
    let inner = &run.lines[0];
    assert_eq!(inner["event_type"], "image.upload", "{inner}");
    assert_eq!(inner["payload"], payload, "{inner}");
    assert_eq!(inner["publisher_id"], "image.zaqar-rs1", "{inner}");
    assert_eq!(inner["priority"], "INFO", "{inner}");
    assert_eq!(
        inner["message_id"].as_str().map(str::len),
        Some(36),
        "a uuid message id: {inner}"
    );
    assert!(inner["timestamp"].is_string(), "{inner}");
    assert_eq!(inner["_context_user"], "bob", "flattened context: {inner}");
    assert_eq!(inner["_context_request_id"], "req-zaqar-rs", "{inner}");

    // Claimed and deleted: nothing is left for a second claim.
    let again = python_claims_one(&project, &queue, "1").await;
    assert_eq!(
        again.code, 2,
        "the queue is empty after the claim: {again:#?}"
    );
}

/// Projects isolate: a notification python-zaqarclient posts in project A reaches the
/// Rust listener of A, and not the listener of project B on the same topic, which still
/// gets what is posted in B.
/// Python posts `isolation.<name>` in `project`: the listener of that project (`own`)
/// gets it, the other's (`other`) gets nothing within the quiet period.
async fn posted_in_reaches_only(
    project: &str,
    queue: &str,
    name: &str,
    own: &mut mpsc::UnboundedReceiver<Notification>,
    other: &mut mpsc::UnboundedReceiver<Notification>,
) {
    let event = format!("isolation.{name}");
    let payload = json!({ "in": name });
    let posted = python_posts(project, queue, &event, &payload).await;
    let got = recv(
        own,
        &format!("the notification posted in project {project}"),
    )
    .await;
    assert_eq!(
        (
            got.event_type.as_str(),
            &got.payload,
            got.metadata.message_id.as_str()
        ),
        (event.as_str(), &payload, posted.as_str()),
        "{got:#?}"
    );
    let leaked = drain(other, QUIET_PERIOD).await;
    assert!(
        leaked.is_empty(),
        "the listener of the other project got the notification posted in {project}: {leaked:#?}"
    );
}

/// The Python peer claims one notification of `queue` in `project`, waiting at most
/// `timeout` seconds.
async fn python_claims_one(project: &str, queue: &str, timeout: &str) -> PeerRun {
    run_peer(&[
        "claim",
        "--project",
        project,
        "--queue",
        queue,
        "--count",
        "1",
        "--timeout",
        timeout,
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_notification_stays_in_its_project() {
    let (project_a, project_b) = (unique("zq-proj-a"), unique("zq-proj-b"));
    let transport_a = setup(&project_a).await;
    let transport_b = open(&project_b).await;
    let (topic, queue) = topic_and_queue("zq-iso");
    let (tx_a, mut rx_a) = mpsc::unbounded_channel();
    let (tx_b, mut rx_b) = mpsc::unbounded_channel();
    let listener_a = rust_listener(&transport_a, &topic, &tx_a).await;
    let listener_b = rust_listener(&transport_b, &topic, &tx_b).await;

    posted_in_reaches_only(&project_a, &queue, "a", &mut rx_a, &mut rx_b).await;
    // B's listener works: it gets what is posted in B, and A does not.
    posted_in_reaches_only(&project_b, &queue, "b", &mut rx_b, &mut rx_a).await;
    stop_listener(listener_a).await;
    stop_listener(listener_b).await;
}
