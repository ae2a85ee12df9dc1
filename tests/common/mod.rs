//! Helpers shared by the interop tests: the broker and the Python peer
//! (`tests/peers/oslo_peer.py`, the real oslo.messaging) as a child process.
//!
//! Every wait is bounded so a broken peer or driver fails the test instead of hanging
//! the suite, and every child is killed when its handle drops. Missing services make
//! the tests fail with a message naming `scripts/services`, never skip.
#![allow(dead_code)] // each test crate uses a different subset

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use messaging::notify::{
    Notification, NotificationListener, NotificationResult, Notifier, Priority, Sink,
};
use messaging::{Config, Context, Endpoint, RemoteError, Target, Transport, TransportUrl};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{Semaphore, SemaphorePermit, mpsc};

mod notify;

pub use notify::*;

/// The broker of the tests unless `RABBIT_URL` says otherwise.
pub const DEFAULT_RABBIT_URL: &str = "rabbit://guest:guest@127.0.0.1:5672/";

/// How long a Python peer may take to start (import oslo.messaging, connect,
/// declare); generous because tests start several at once on small machines.
pub const READY_LIMIT: Duration = Duration::from_secs(60);
/// How long one expected message (a request line, a notification) may take.
pub const MESSAGE_LIMIT: Duration = Duration::from_secs(30);
/// How long a one-shot peer command (call, cast, notify) may run.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(90);
/// How long to keep watching for messages that must *not* arrive.
pub const QUIET_PERIOD: Duration = Duration::from_secs(2);

/// At most this many tests talk to Python at once: each peer costs a CPU-bound second
/// to start, and too many at once would make the timing-sensitive tests (call monitor)
/// flaky on a two-core machine.
static SLOTS: Semaphore = Semaphore::const_new(4);

/// The broker URL: `RABBIT_URL`, else [`DEFAULT_RABBIT_URL`].
pub fn rabbit_url() -> String {
    std::env::var("RABBIT_URL").unwrap_or_else(|_| DEFAULT_RABBIT_URL.to_string())
}

/// The Kafka-protocol broker of the tests (tansu) unless `KAFKA_URL` says otherwise.
pub const DEFAULT_KAFKA_URL: &str = "kafka://127.0.0.1:9092";

/// How long the broker may hold a consumer's fetch, in ms. tansu answers a fetch only
/// when this expires, so the tests keep it short on both sides (the Python peer sets
/// the same for oslo's consumers).
pub const KAFKA_FETCH_WAIT_MS: u32 = 10;

/// The Kafka broker URL: `KAFKA_URL`, else [`DEFAULT_KAFKA_URL`].
pub fn kafka_url() -> String {
    std::env::var("KAFKA_URL").unwrap_or_else(|_| DEFAULT_KAFKA_URL.to_string())
}

/// `url` with `key=value` added to its query.
pub fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

/// The Kafka URL the tests open: [`kafka_url`] with a short `fetch_wait_max_ms` and
/// reply topics left in place at cleanup. The
/// Python peer accepts it too (it drops the Rust driver's extension parameters, which
/// oslo would refuse, and sets the same fetch wait).
pub fn kafka_test_url() -> String {
    let url = with_query(
        &kafka_url(),
        "fetch_wait_max_ms",
        &KAFKA_FETCH_WAIT_MS.to_string(),
    );
    // tansu 0.6 deletes every topic when asked to delete one.
    with_query(&url, "delete_reply_topics", "false")
}

/// The interpreter of the peer: `OSLO_PEER_PYTHON`, else `<repo>/.venv/bin/python`.
pub fn python() -> PathBuf {
    std::env::var_os("OSLO_PEER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

/// The peer program.
pub fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/oslo_peer.py")
}

/// A name no other test (or earlier run) uses, for topics, servers and pools: the
/// process id, the time in nanoseconds and a counter.
pub fn unique(what: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("interop-{what}-{}-{nanos:x}-{n}", std::process::id())
}

/// One of the slots that bound how many tests talk to Python at once.
pub async fn slot() -> SemaphorePermit<'static> {
    tokio::time::timeout(Duration::from_secs(600), SLOTS.acquire())
        .await
        .expect("no test slot within 600 s")
        .expect("the slot semaphore is never closed")
}

/// What every test starts with: the services checked, a slot, and a transport.
pub struct Setup {
    /// The transport to the broker, through `messaging::registry()`.
    pub transport: Transport,
    /// The broker URL, for the Python peer.
    pub url: String,
    _slot: SemaphorePermit<'static>,
}

/// Checks that RabbitMQ answers and the Python peer exists (failing with the way to
/// fix it), waits for a slot, and opens a transport through the facade's registry.
pub async fn setup() -> Setup {
    let url = rabbit_url();
    require_broker(&url).await;
    require_python();
    let slot = slot().await;
    let transport = messaging::registry()
        .transport(&url, &Config::default())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot open a transport for {}: {e}\n(the rabbit driver must be registered in \
                 messaging::registry(); the broker is started by scripts/services)",
                masked(&url)
            )
        });
    Setup {
        transport,
        url,
        _slot: slot,
    }
}

/// Like [`setup`] for Kafka: checks that the Kafka broker answers (it is
/// [`kafka_test_url`]), that the Python peer has confluent-kafka, takes a slot, and
/// opens a transport through the facade's registry. `url` is the Kafka URL, which the
/// Python peer accepts as it is.
pub async fn setup_kafka() -> Setup {
    let url = kafka_test_url();
    require_kafka(&url).await;
    require_python();
    require_python_module("confluent_kafka").await;
    let slot = slot().await;
    let transport = open_kafka(&url, &Config::default()).await;
    Setup {
        transport,
        url,
        _slot: slot,
    }
}

/// A transport for a Kafka URL through the facade's registry, failing with the way to
/// fix it.
pub async fn open_kafka(url: &str, config: &Config) -> Transport {
    messaging::registry()
        .transport(url, config)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot open a transport for {}: {e}\n(the kafka driver must be registered in \
                 messaging::registry(); the broker is started by scripts/services)",
                masked(url)
            )
        })
}

fn masked(url: &str) -> String {
    TransportUrl::parse(url)
        .map(|u| u.masked())
        .unwrap_or_else(|_| "<unparsable URL>".into())
}

/// Fails unless a TCP connection to one of the RabbitMQ URL's hosts succeeds.
pub async fn require_broker(url: &str) {
    require_tcp(url, 5672, "RabbitMQ", "RABBIT_URL").await;
}

/// Fails unless a TCP connection to one of the Kafka URL's hosts succeeds.
pub async fn require_kafka(url: &str) {
    require_tcp(url, 9092, "The Kafka broker (tansu)", "KAFKA_URL").await;
}

/// Fails unless a TCP connection to one of the URL's hosts succeeds, naming
/// `scripts/services`.
pub async fn require_tcp(url: &str, default_port: u16, what: &str, variable: &str) {
    let parsed = TransportUrl::parse(url)
        .unwrap_or_else(|e| panic!("{variable} is not a transport URL: {e}"));
    let mut addresses: Vec<String> = parsed
        .hosts
        .iter()
        .map(|h| {
            let host = h.hostname.clone().unwrap_or_else(|| "127.0.0.1".into());
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            format!("{host}:{}", h.port.unwrap_or(default_port))
        })
        .collect();
    if addresses.is_empty() {
        addresses.push(format!("127.0.0.1:{default_port}"));
    }
    let mut errors = Vec::new();
    for address in &addresses {
        match tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect(address),
        )
        .await
        {
            Ok(Ok(_)) => return,
            Ok(Err(e)) => errors.push(format!("{address}: {e}")),
            Err(_) => errors.push(format!("{address}: no answer within 5 s")),
        }
    }
    panic!(
        "{what} is not reachable ({}); run scripts/services to install and start it \
         ({variable} overrides the broker URL)",
        errors.join("; ")
    );
}

/// Fails unless the peer's interpreter can import `module`.
pub async fn require_python_module(module: &str) {
    let python = python();
    let mut command = Command::new(&python);
    command
        .args(["-c", &format!("import {module}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let run = tokio::time::timeout(COMMAND_LIMIT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{} -c 'import {module}' hangs", python.display()))
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    if !run.status.success() {
        panic!(
            "the Python peer's virtualenv has no {module} ({}); run scripts/services to \
             install tests/peers/requirements.txt into it",
            String::from_utf8_lossy(&run.stderr).trim()
        );
    }
}

/// Fails unless the peer's interpreter exists.
pub fn require_python() {
    let python = python();
    if !python.exists() {
        panic!(
            "the Python peer's interpreter {} does not exist; run scripts/services to create \
             the virtualenv with oslo.messaging (OSLO_PEER_PYTHON overrides the path)",
            python.display()
        );
    }
}

/// What a finished one-shot peer command printed.
#[derive(Debug)]
pub struct PeerRun {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// stdout, one JSON value per line.
    pub lines: Vec<Value>,
    /// stderr, for failure messages.
    pub stderr: String,
}

impl PeerRun {
    /// The `result` of a successful `call`, failing with the peer's output otherwise.
    pub fn result(&self) -> &Value {
        assert_eq!(self.code, 0, "the Python call failed: {self:#?}");
        self.lines
            .first()
            .and_then(|l| l.get("result"))
            .unwrap_or_else(|| panic!("no result printed: {self:#?}"))
    }

    /// The `error` object of a failed `call`, checking the exit code.
    pub fn error(&self, code: i32) -> &Value {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self.lines
            .iter()
            .find_map(|l| l.get("error"))
            .unwrap_or_else(|| panic!("no error printed: {self:#?}"))
    }
}

/// Runs `oslo_peer.py <args>` to completion within [`COMMAND_LIMIT`].
pub async fn run_peer(args: &[String]) -> PeerRun {
    let child = peer_command(args)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python().display()));
    let output = tokio::time::timeout(COMMAND_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("oslo_peer.py {args:?} ran longer than {COMMAND_LIMIT:?}"))
        .expect("waiting for the peer");
    let stdout = String::from_utf8_lossy(&output.stdout);
    PeerRun {
        code: output.status.code().unwrap_or(-1),
        lines: stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| Value::String(l.to_string())))
            .collect(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn peer_command(args: &[String]) -> Command {
    let mut command = Command::new(python());
    command
        .arg("-u")
        .arg(peer_script())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Turns `&str`s into the owned arguments the peer helpers take.
pub fn args<const N: usize>(items: [&str; N]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A long-running peer (`server` or `listen`) that printed `ready`. Killed on drop.
pub struct Peer {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
}

impl Peer {
    /// Starts `oslo_peer.py <args>` and waits for its `ready` line.
    pub async fn start(args: Vec<String>) -> Peer {
        let what = format!("oslo_peer.py {}", args.join(" "));
        let mut child = peer_command(&args)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python().display()));
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        // Drained all along, so a chatty peer never blocks on a full pipe.
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut peer = Peer {
            what,
            child,
            stdin,
            stdout,
            stderr,
        };
        match tokio::time::timeout(READY_LIMIT, peer.stdout.next_line()).await {
            Ok(Ok(Some(line))) if line.trim() == "ready" => peer,
            Ok(Ok(Some(line))) => peer.fail(&format!("printed {line:?} instead of ready")),
            Ok(Ok(None)) => peer.fail("exited before it was ready"),
            Ok(Err(e)) => peer.fail(&format!("unreadable stdout: {e}")),
            Err(_) => peer.fail(&format!("was not ready within {READY_LIMIT:?}")),
        }
    }

    /// Starts an RPC server peer on `topic` named `server`, with extra flags.
    pub async fn server(url: &str, topic: &str, server: &str, extra: &[&str]) -> Peer {
        let mut a = args(["server", "--url", url, "--topic", topic, "--server", server]);
        a.extend(extra.iter().map(|s| s.to_string()));
        Peer::start(a).await
    }

    /// Writes one line to the peer's stdin (the `service` peer's commands).
    pub async fn send(&mut self, line: &str) {
        use tokio::io::AsyncWriteExt;
        let Some(stdin) = self.stdin.as_mut() else {
            self.fail("has no stdin any more")
        };
        let written = tokio::time::timeout(MESSAGE_LIMIT, async {
            stdin.write_all(line.as_bytes()).await?;
            stdin.write_all(b"\n").await?;
            stdin.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.fail(&format!("does not take stdin: {e}")),
            Err(_) => self.fail(&format!("took no stdin within {MESSAGE_LIMIT:?}")),
        }
    }

    /// The next JSON line that has `key`, within [`MESSAGE_LIMIT`]; the lines without
    /// it that came first are added to `skipped`.
    pub async fn next_with(&mut self, key: &str, skipped: &mut Vec<Value>) -> Value {
        let deadline = tokio::time::Instant::now() + MESSAGE_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.try_next(left).await {
                Some(v) if v.get(key).is_some() => return v,
                Some(v) => skipped.push(v),
                None => self.fail(&format!(
                    "printed no line with {key:?} within {MESSAGE_LIMIT:?}; before: {skipped:?}"
                )),
            }
        }
    }

    /// Panics with what the peer printed on stderr.
    pub fn fail(&self, why: &str) -> ! {
        // Give the stderr reader a moment to catch the last words of a dying peer.
        std::thread::sleep(Duration::from_millis(300));
        panic!(
            "{} {why}\n--- its stderr ---\n{}",
            self.what,
            self.stderr.lock().unwrap()
        );
    }

    /// The next JSON line within `limit`, or `None` when none came.
    pub async fn try_next(&mut self, limit: Duration) -> Option<Value> {
        match tokio::time::timeout(limit, self.stdout.next_line()).await {
            Err(_) => None,
            Ok(Ok(Some(line))) => Some(
                serde_json::from_str(&line)
                    .unwrap_or_else(|_| self.fail(&format!("printed a non-JSON line {line:?}"))),
            ),
            Ok(Ok(None)) => {
                // The peer is gone; nothing more will come.
                tokio::time::sleep(limit.min(Duration::from_millis(200))).await;
                None
            }
            Ok(Err(e)) => self.fail(&format!("unreadable stdout: {e}")),
        }
    }

    /// The next JSON line, failing after [`MESSAGE_LIMIT`].
    pub async fn next(&mut self) -> Value {
        match self.try_next(MESSAGE_LIMIT).await {
            Some(v) => v,
            None => self.fail(&format!("printed nothing more within {MESSAGE_LIMIT:?}")),
        }
    }

    /// Exactly the next `n` JSON lines.
    pub async fn take(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next().await);
        }
        out
    }

    /// Whatever the peer prints within `period` (for "nothing else arrives" checks).
    pub async fn drain(&mut self, period: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + period;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return out;
            }
            match self.try_next(left).await {
                Some(v) => out.push(v),
                None => return out,
            }
        }
    }

    /// Closes stdin (a server then stops gracefully) and waits for the exit code and
    /// the lines still printed, within [`COMMAND_LIMIT`].
    pub async fn finish(mut self) -> (i32, Vec<Value>) {
        drop(self.stdin.take());
        let mut rest = Vec::new();
        let deadline = tokio::time::Instant::now() + COMMAND_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.stdout.next_line()).await {
                Ok(Ok(Some(line))) => rest.push(
                    serde_json::from_str(&line).unwrap_or_else(|_| Value::String(line.clone())),
                ),
                Ok(Ok(None)) | Ok(Err(_)) => break,
                Err(_) => self.fail(&format!("did not finish within {COMMAND_LIMIT:?}")),
            }
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let status = match tokio::time::timeout(left, self.child.wait()).await {
            Ok(status) => status.expect("waiting for the peer"),
            Err(_) => self.fail(&format!("did not exit within {COMMAND_LIMIT:?}")),
        };
        (status.code().unwrap_or(-1), rest)
    }

    /// Stops a server gracefully (it then deletes its fanout queue, as oslo does) and
    /// checks that it exited cleanly.
    pub async fn stop(self) {
        let what = self.what.clone();
        let stderr = self.stderr.clone();
        let (code, rest) = self.finish().await;
        assert_eq!(
            code,
            0,
            "{what} exited with {code}; it printed {rest:?}\n--- its stderr ---\n{}",
            stderr.lock().unwrap()
        );
    }

    /// What the peer wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

/// One request a Rust test server handled.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The server's name.
    pub server: String,
    /// The method called.
    pub method: String,
    /// Its keyword arguments.
    pub args: Value,
    /// The context it came with.
    pub ctx: Context,
}

/// The Rust twin of the Python peer's endpoint: `echo`, `add`, `fail`, `sleep` and
/// `context` with the same behaviour, recording every request on `tx` before it runs.
pub fn recording_endpoint(server: &str, tx: mpsc::UnboundedSender<Seen>) -> Endpoint {
    let recorder = Recorder {
        server: server.to_string(),
        tx,
    };
    let (r1, r2, r3, r4, r5) = (
        recorder.clone(),
        recorder.clone(),
        recorder.clone(),
        recorder.clone(),
        recorder,
    );
    Endpoint::new()
        .method("echo", move |ctx: Context, args: Value| {
            r1.record("echo", &ctx, &args);
            async move { Ok::<_, RemoteError>(args.get("data").cloned().unwrap_or(Value::Null)) }
        })
        .method("add", move |ctx: Context, args: Value| {
            r2.record("add", &ctx, &args);
            async move {
                match (args["a"].as_i64(), args["b"].as_i64()) {
                    (Some(a), Some(b)) => Ok(json!(a + b)),
                    _ => match (args["a"].as_f64(), args["b"].as_f64()) {
                        (Some(a), Some(b)) => Ok(json!(a + b)),
                        _ => Err(RemoteError::type_error("add() needs two numbers a and b")),
                    },
                }
            }
        })
        .method("fail", move |ctx: Context, args: Value| {
            r3.record("fail", &ctx, &args);
            async move {
                let message = args["message"].as_str().unwrap_or_default().to_string();
                Err::<Value, _>(RemoteError::value_error(message))
            }
        })
        .method("sleep", move |ctx: Context, args: Value| {
            r4.record("sleep", &ctx, &args);
            async move {
                let seconds = args["seconds"].clone();
                let secs = seconds.as_f64().unwrap_or(0.0).max(0.0);
                tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                Ok::<_, RemoteError>(seconds)
            }
        })
        .method("context", move |ctx: Context, args: Value| {
            r5.record("context", &ctx, &args);
            let map = ctx.as_map().clone();
            async move { Ok::<_, RemoteError>(Value::Object(map)) }
        })
}

#[derive(Clone)]
struct Recorder {
    server: String,
    tx: mpsc::UnboundedSender<Seen>,
}

impl Recorder {
    fn record(&self, method: &str, ctx: &Context, args: &Value) {
        let _ = self.tx.send(Seen {
            server: self.server.clone(),
            method: method.to_string(),
            args: args.clone(),
            ctx: ctx.clone(),
        });
    }
}

/// The next item of a channel within [`MESSAGE_LIMIT`], failing with `what` otherwise.
pub async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    match tokio::time::timeout(MESSAGE_LIMIT, rx.recv()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("{what}: the channel closed"),
        Err(_) => panic!("{what}: nothing within {MESSAGE_LIMIT:?}"),
    }
}

/// Everything a channel yields within `period`.
pub async fn drain<T>(rx: &mut mpsc::UnboundedReceiver<T>, period: Duration) -> Vec<T> {
    let deadline = tokio::time::Instant::now() + period;
    let mut out = Vec::new();
    while let Ok(Some(item)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        out.push(item);
    }
    out
}

/// A notification handler that forwards what it gets to a channel.
pub fn forward(
    tx: &mpsc::UnboundedSender<Notification>,
) -> impl Fn(Notification) -> std::future::Ready<NotificationResult> + Send + Sync + 'static {
    let tx = tx.clone();
    move |n| {
        let _ = tx.send(n);
        std::future::ready(NotificationResult::Handled)
    }
}
