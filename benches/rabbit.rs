//! RPC and notification throughput and latency on a local RabbitMQ: this project, raw
//! lapin doing the same oslo exchange by hand, and Python oslo.messaging (client and
//! server on the same broker), in one run.
//!
//! ```text
//! cargo bench --bench rabbit                                    # full run, Markdown table
//! cargo bench --bench rabbit -- --payload 100 --seconds 5 --only ours,raw
//! cargo bench --bench rabbit -- --no-python --rows calls-1,casts-256
//! ```
//!
//! Rows: calls one at a time, calls from 64 concurrent callers, casts and notifications
//! from one caller and from 256 concurrent callers, each with a 100-byte and a 3 KB JSON
//! string argument. Each row runs for `--seconds` (3) after a one-second warm-up and
//! reports throughput and p50/p99 latency per call (or per publish, for casts and
//! notifications, which are measured on the sending side; the consumer must have
//! drained everything before the next row starts).
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) every row runs a handful of
//! messages as a smoke test (the Python peer, slow to start, for the first payload size
//! only). The broker is `RABBIT_URL` (oslo form
//! `rabbit://guest:guest@127.0.0.1:5672/` or lapin form `amqp://…/%2f`; the other form
//! is derived, or taken from `AMQP_URL`). The Python rows need `<repo>/.venv` (or
//! `OSLO_PEER_PYTHON`) with oslo.messaging, which `scripts/services` creates; without
//! it the program fails unless given `--no-python`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// The default broker, in oslo's URL form.
const DEFAULT_URL: &str = "rabbit://guest:guest@127.0.0.1:5672/";
/// oslo's default `control_exchange`, used by every implementation.
const EXCHANGE: &str = "openstack";
/// Call timeout of every implementation.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a consumer may take to drain what a cast or notification row sent.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one operation (a call, or a publish and its confirm) may take: a
/// connection lost mid-row must fail the row, not hang the program.
const OP_TIMEOUT: Duration = Duration::from_secs(70);
/// Room for a row's setup and teardown (connections, declarations, deletions).
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------
// Scenarios, options and the measurement loop shared by the Rust implementations.
// ---------------------------------------------------------------------------------

/// What a row does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Call,
    Cast,
    Notify,
}

/// One scenario: a kind of message and how many concurrent senders.
#[derive(Debug, Clone, Copy)]
struct Row {
    kind: Kind,
    workers: usize,
}

impl Row {
    const ALL: [Row; 6] = [
        Row::new(Kind::Call, 1),
        Row::new(Kind::Call, 64),
        Row::new(Kind::Cast, 1),
        Row::new(Kind::Cast, 256),
        Row::new(Kind::Notify, 1),
        Row::new(Kind::Notify, 256),
    ];

    const fn new(kind: Kind, workers: usize) -> Self {
        Row { kind, workers }
    }

    /// The key the Python peer uses for this row.
    fn key(&self) -> String {
        let kind = match self.kind {
            Kind::Call => "calls",
            Kind::Cast => "casts",
            Kind::Notify => "notify",
        };
        format!("{kind}-{}", self.workers)
    }

    fn label(&self) -> String {
        let callers = if self.workers == 1 {
            "1 caller".to_string()
        } else {
            format!("{} concurrent callers", self.workers)
        };
        match self.kind {
            Kind::Call => format!("calls, {callers}"),
            Kind::Cast => format!("casts, {callers}"),
            Kind::Notify => format!("notifications, {callers}"),
        }
    }

    /// The lowest acceptable ours/raw throughput ratio.
    fn target(&self) -> f64 {
        match (self.kind, self.workers) {
            (Kind::Call, 1) => 1.0,
            (Kind::Call, _) => 0.9,
            (_, 1) => 0.9,
            _ => 0.8,
        }
    }
}

/// Which implementations to run.
#[derive(Debug, Clone, Copy)]
struct Only {
    ours: bool,
    raw: bool,
    python: bool,
}

/// Command-line options.
#[derive(Debug, Clone)]
struct Options {
    /// `--bench` given: the full measurement, else a smoke pass.
    full: bool,
    only: Only,
    payloads: Vec<usize>,
    seconds: f64,
    /// Row keys to run (`calls-1`, `casts-256`, …); empty: all.
    rows: Vec<String>,
}

impl Options {
    fn parse() -> Result<Self, String> {
        let mut o = Options {
            full: false,
            only: Only {
                ours: true,
                raw: true,
                python: true,
            },
            payloads: vec![100, 3072],
            seconds: 3.0,
            rows: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            match arg.as_str() {
                "--bench" => o.full = true,
                "--no-python" => o.only.python = false,
                "--only" => {
                    let list = value("--only")?;
                    let has = |n: &str| list.split(',').any(|x| x.trim() == n);
                    if let Some(bad) = list
                        .split(',')
                        .find(|x| !["ours", "raw", "python"].contains(&x.trim()))
                    {
                        return Err(format!("--only takes ours, raw, python; got {bad:?}"));
                    }
                    o.only = Only {
                        ours: has("ours"),
                        raw: has("raw"),
                        python: has("python") && o.only.python,
                    };
                }
                "--payload" => {
                    o.payloads = value("--payload")?
                        .split(',')
                        .map(|p| p.trim().parse::<usize>())
                        .collect::<Result<_, _>>()
                        .map_err(|e| format!("--payload: {e}"))?;
                }
                "--seconds" => {
                    o.seconds = value("--seconds")?
                        .parse()
                        .map_err(|e| format!("--seconds: {e}"))?;
                    if !(o.seconds > 0.0 && o.seconds.is_finite()) {
                        return Err("--seconds must be positive".into());
                    }
                }
                "--rows" => {
                    o.rows = value("--rows")?
                        .split(',')
                        .map(|r| r.trim().to_string())
                        .collect();
                    if let Some(bad) = o
                        .rows
                        .iter()
                        .find(|r| !Row::ALL.iter().any(|row| row.key() == **r))
                    {
                        return Err(format!(
                            "--rows takes calls-1, calls-64, casts-1, casts-256, notify-1, notify-256; got {bad:?}"
                        ));
                    }
                }
                // Whatever else cargo or a test runner passes (filters, --nocapture).
                _ => {}
            }
        }
        Ok(o)
    }

    /// The rows to run.
    fn rows(&self) -> Vec<Row> {
        Row::ALL
            .into_iter()
            .filter(|r| self.rows.is_empty() || self.rows.contains(&r.key()))
            .collect()
    }

    fn plan(&self) -> Plan {
        if self.full {
            Plan {
                warmup: Duration::from_secs(1),
                measure: Duration::from_secs_f64(self.seconds),
                max_ops: None,
            }
        } else {
            // A smoke pass: a few messages per sender, bounded in time.
            Plan {
                warmup: Duration::ZERO,
                measure: Duration::from_secs(2),
                max_ops: Some(3),
            }
        }
    }
}

/// How long a row runs.
#[derive(Debug, Clone, Copy)]
struct Plan {
    warmup: Duration,
    measure: Duration,
    /// Operations per sender at most (the smoke pass).
    max_ops: Option<u64>,
}

/// The broker addresses, and what every row of one payload size shares.
#[derive(Debug, Clone)]
struct Bench {
    /// oslo form, for ours and Python.
    oslo_url: String,
    /// lapin form.
    amqp_url: String,
    plan: Plan,
    /// The JSON string argument.
    payload: Arc<str>,
    /// Makes queue names unique to this run.
    run_id: String,
}

impl Bench {
    /// A topic (and so queue) name unique to this run, implementation and row.
    fn topic(&self, implementation: &str, row: Row) -> String {
        format!(
            "bench_rabbit_{}_{implementation}_{}_{}",
            self.run_id,
            row.key().replace('-', "_"),
            self.payload.len()
        )
    }
}

/// The argument of `echo`: `{"data": "<payload>"}`.
#[derive(Serialize)]
struct EchoArgs<'a> {
    data: &'a str,
}

/// Builds a payload of `len` ASCII characters that need no JSON escaping.
fn payload(len: usize) -> Arc<str> {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|i| alphabet[i % alphabet.len()] as char)
        .collect::<String>()
        .into()
}

/// (oslo URL, lapin URL): `RABBIT_URL` in either form, the other derived unless
/// `AMQP_URL` gives lapin's, as the driver's tests do.
fn broker_urls() -> (String, String) {
    let (oslo, amqp) = derived_urls();
    (oslo, std::env::var("AMQP_URL").unwrap_or(amqp))
}

fn derived_urls() -> (String, String) {
    let url = std::env::var("RABBIT_URL").unwrap_or_else(|_| DEFAULT_URL.into());
    let (scheme, rest) = url.split_once("://").unwrap_or(("rabbit", &url));
    let (authority, vhost) = rest.split_once('/').unwrap_or((rest, ""));
    // oslo reads an empty vhost as RabbitMQ's default `/`; lapin needs it spelled `%2f`.
    let (oslo_vhost, amqp_vhost) = match vhost {
        "" | "%2f" | "%2F" => ("", "%2f"),
        v => (v, v),
    };
    if scheme.starts_with("amqp") {
        (
            format!("rabbit://{authority}/{oslo_vhost}"),
            format!("{scheme}://{authority}/{amqp_vhost}"),
        )
    } else {
        (
            format!("{scheme}://{authority}/{oslo_vhost}"),
            format!("amqp://{authority}/{amqp_vhost}"),
        )
    }
}

/// A short error string from anything displayable.
fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Latencies of one row's measured window.
#[derive(Debug, Default)]
struct Stats {
    /// Sorted.
    latencies: Vec<Duration>,
    elapsed: Duration,
}

/// What a row reports, whichever implementation measured it.
#[derive(Debug, Clone)]
struct Measured {
    throughput: f64,
    p50: Duration,
    p99: Duration,
    note: Option<String>,
}

impl Stats {
    fn measured(&self) -> Result<Measured, String> {
        let n = self.latencies.len();
        if n == 0 || self.elapsed.is_zero() {
            return Err("no operation completed in the measured window".into());
        }
        let at = |q: usize| self.latencies[(n * q / 100).min(n - 1)];
        Ok(Measured {
            throughput: n as f64 / self.elapsed.as_secs_f64(),
            p50: at(50),
            p99: at(99),
            note: None,
        })
    }
}

/// Runs `op` from `workers` concurrent tasks: a warm-up, then the measured window.
/// Operations starting inside the window are timed; the window ends when the last of
/// them finishes. The first failure ends the row.
async fn drive<F, Fut>(plan: Plan, workers: usize, op: F) -> Result<Measured, String>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let window = start + plan.warmup;
    let end = window + plan.measure;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let op = op.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut last = window;
            let mut done = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= end || plan.max_ops.is_some_and(|m| done >= m) {
                    break;
                }
                tokio::time::timeout(OP_TIMEOUT, op())
                    .await
                    .map_err(|_| format!("an operation took longer than {OP_TIMEOUT:?}"))??;
                let t1 = Instant::now();
                if t0 >= window {
                    latencies.push(t1 - t0);
                    last = t1;
                }
                done += 1;
            }
            Ok::<_, String>((latencies, last))
        });
    }
    let mut stats = Stats::default();
    let mut last = window;
    while let Some(joined) = tasks.join_next().await {
        let (latencies, worker_last) = joined.map_err(err)??;
        stats.latencies.extend(latencies);
        last = last.max(worker_last);
    }
    stats.elapsed = last.saturating_duration_since(window);
    stats.latencies.sort_unstable();
    stats.measured()
}

/// Waits until `received` reaches `sent`: a cast or notification row is only over when
/// its consumer has everything.
async fn drain(received: &AtomicU64, sent: u64) -> Result<(), String> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let got = received.load(Ordering::Relaxed);
        if got >= sent {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the consumer got {got} of {sent} messages within {DRAIN_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Deletes the named queues (with whatever they still hold), each on its own channel
/// since a failed delete closes its channel.
async fn delete_queues(amqp_url: &str, queues: &[String]) {
    // Best effort, and never a reason to hang.
    let _ = tokio::time::timeout(SETUP_TIMEOUT, delete_queues_now(amqp_url, queues)).await;
}

async fn delete_queues_now(amqp_url: &str, queues: &[String]) {
    use lapin::options::QueueDeleteOptions;
    let Ok(mut link) = raw::Link::open(amqp_url).await else {
        return;
    };
    for q in queues {
        if let Ok(ch) = link.channel().await {
            let _ = ch
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }
    link.close().await;
}

// ---------------------------------------------------------------------------------
// Ours: the messaging facade on the rabbit driver.
// ---------------------------------------------------------------------------------

mod ours {
    use super::*;
    use messaging::notify::{Notification, NotificationListener, Notifier, Priority};
    use messaging::{Config, Context, Endpoint, RemoteError, RpcClient, RpcServer, Target};

    #[derive(serde::Deserialize)]
    struct Echo {
        data: String,
    }

    /// A server transport and a client transport, as two processes would have.
    async fn transports(b: &Bench) -> Result<(messaging::Transport, messaging::Transport), String> {
        let registry = messaging::registry();
        let cfg = Config::default();
        let server = registry.transport(&b.oslo_url, &cfg).await.map_err(err)?;
        let client = registry.transport(&b.oslo_url, &cfg).await.map_err(err)?;
        Ok((server, client))
    }

    /// Calls or casts `echo` on an `RpcServer`.
    pub async fn rpc(b: &Bench, row: Row) -> Result<Measured, String> {
        let topic = b.topic("ours", row);
        let (server_t, client_t) = transports(b).await?;
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        let api = Endpoint::new().method("echo", move |_ctx: Context, Echo { data }| {
            counter.fetch_add(1, Ordering::Relaxed);
            async move { Ok::<_, RemoteError>(data) }
        });
        let server = RpcServer::new(&server_t, Target::topic(topic.clone()).server("bench"))
            .endpoint(api)
            .start()
            .await
            .map_err(err)?;
        let client = RpcClient::new(&client_t, Target::topic(topic.clone())).timeout(CALL_TIMEOUT);
        let sent = Arc::new(AtomicU64::new(0));
        let state = Arc::new((client, b.payload.clone(), sent.clone()));
        let kind = row.kind;
        let result = drive(b.plan, row.workers, move || {
            let state = state.clone();
            async move {
                let (client, payload, sent) = &*state;
                let args = EchoArgs { data: payload };
                if kind == Kind::Call {
                    let echoed: String = client
                        .call(&Context::new(), "echo", args)
                        .await
                        .map_err(err)?;
                    if echoed.len() != payload.len() {
                        return Err("echo returned a different payload".into());
                    }
                } else {
                    client
                        .cast(&Context::new(), "echo", args)
                        .await
                        .map_err(err)?;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
        })
        .await;
        let drained = match (&result, kind) {
            (Ok(_), Kind::Cast) => drain(&received, sent.load(Ordering::Relaxed)).await,
            _ => Ok(()),
        };
        let _ = server.stop().await;
        let _ = server.wait().await;
        client_t.cleanup().await;
        server_t.cleanup().await;
        delete_queues(&b.amqp_url, &[topic.clone(), format!("{topic}.bench")]).await;
        drained?;
        result
    }

    /// Notifications from a `Notifier` to a `NotificationListener`.
    pub async fn notify(b: &Bench, row: Row) -> Result<Measured, String> {
        let topic = b.topic("ours", row);
        let (listener_t, notifier_t) = transports(b).await?;
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        let listener = NotificationListener::new(&listener_t, [Target::topic(topic.clone())])
            .on(Priority::Info, move |_n: Notification| {
                counter.fetch_add(1, Ordering::Relaxed);
                async {}
            })
            .start()
            .await
            .map_err(err)?;
        let notifier = Notifier::new(&notifier_t, "bench.host").topics([topic.clone()]);
        let sent = Arc::new(AtomicU64::new(0));
        let state = Arc::new((notifier, b.payload.clone(), sent.clone()));
        let result = drive(b.plan, row.workers, move || {
            let state = state.clone();
            async move {
                let (notifier, payload, sent) = &*state;
                notifier
                    .try_notify(
                        &Context::new(),
                        "bench.event",
                        Priority::Info,
                        EchoArgs { data: payload },
                    )
                    .await
                    .map_err(err)?;
                sent.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        })
        .await;
        let drained = match &result {
            Ok(_) => drain(&received, sent.load(Ordering::Relaxed)).await,
            Err(_) => Ok(()),
        };
        listener.stop().await;
        let _ = listener.wait().await;
        notifier_t.cleanup().await;
        listener_t.cleanup().await;
        delete_queues(&b.amqp_url, &[format!("{topic}.info")]).await;
        drained?;
        result
    }
}

// ---------------------------------------------------------------------------------
// Raw lapin: the same oslo topology, envelope and confirms, by hand.
// ---------------------------------------------------------------------------------

mod raw {
    use super::*;
    use futures::StreamExt;
    use lapin::options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
        ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    };
    use lapin::types::{AMQPValue, FieldTable};
    use lapin::{BasicProperties, Channel, Connection, ExchangeKind};
    use serde_json::{Value, json};
    use std::sync::Mutex;
    use tokio::sync::oneshot;

    /// oslo's `x-expires` of reply queues (`rabbit_transient_queues_ttl`, in ms).
    const REPLY_QUEUE_EXPIRES_MS: i32 = 1_800_000;

    fn hex_id() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// A connection and the channels opened on it, closed together. lapin closes a
    /// channel when its last handle drops; such a close racing the connection's close
    /// fails the connection (an error log, a reset socket, once a hung run), so the
    /// handles live until the connection is closed.
    pub struct Link {
        conn: Connection,
        channels: Vec<Channel>,
    }

    impl Link {
        pub async fn open(amqp_url: &str) -> Result<Link, String> {
            let conn = Connection::connect(amqp_url, Default::default())
                .await
                .map_err(err)?;
            Ok(Link {
                conn,
                channels: Vec::new(),
            })
        }

        /// A new channel; oslo turns publisher confirms on for every channel.
        pub async fn channel(&mut self) -> Result<Channel, String> {
            let ch = self.conn.create_channel().await.map_err(err)?;
            ch.confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(err)?;
            self.channels.push(ch.clone());
            Ok(ch)
        }

        /// Closes the connection, then lets go of the channels.
        pub async fn close(self) {
            let closing = self.conn.close(200, "bench done".into());
            let _ = tokio::time::timeout(Duration::from_secs(10), closing).await;
            drop(self.channels);
        }
    }

    /// The control exchange (topic, not durable) and a queue bound to it by its name.
    async fn declare(ch: &Channel, queue: &str) -> Result<(), String> {
        ch.exchange_declare(
            EXCHANGE.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(err)?;
        ch.queue_declare(
            queue.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(err)?;
        ch.queue_bind(
            queue.into(),
            EXCHANGE.into(),
            queue.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(err)
    }

    /// kombu's properties: JSON, persistent, priority 0, no headers; calls expire.
    fn properties(expiration: Option<&str>) -> BasicProperties {
        let p = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_content_encoding("utf-8".into())
            .with_delivery_mode(2)
            .with_priority(0)
            .with_headers(FieldTable::default());
        match expiration {
            Some(ms) => p.with_expiration(ms.into()),
            None => p,
        }
    }

    /// The 2.0 envelope around an inner message.
    fn envelope(inner: &Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"oslo.version": "2.0", "oslo.message": inner.to_string()}))
            .unwrap_or_default()
    }

    fn open_envelope(body: &[u8]) -> Result<Value, String> {
        let outer: Value = serde_json::from_slice(body).map_err(err)?;
        let inner = outer
            .get("oslo.message")
            .and_then(Value::as_str)
            .ok_or("no oslo.message in the envelope")?;
        serde_json::from_str(inner).map_err(err)
    }

    /// Publishes and waits for the broker's confirm; a returned message is a failure.
    async fn publish(
        ch: &Channel,
        exchange: &str,
        key: &str,
        mandatory: bool,
        body: &[u8],
        props: BasicProperties,
    ) -> Result<(), String> {
        let confirm = ch
            .basic_publish(
                exchange.into(),
                key.into(),
                BasicPublishOptions {
                    mandatory,
                    ..Default::default()
                },
                body,
                props,
            )
            .await
            .map_err(err)?;
        check(confirm.await)
    }

    fn check(confirmation: lapin::Result<lapin::Confirmation>) -> Result<(), String> {
        let confirmation = confirmation.map_err(err)?;
        if !confirmation.is_ack() {
            return Err("the broker nacked a publish".into());
        }
        match confirmation.take_message() {
            Some(returned) => Err(format!("returned: {}", returned.reply_text)),
            None => Ok(()),
        }
    }

    /// Consumes `queue` and hands each body to `on_message`; with `spawn`, each in its
    /// own task (an RPC server dispatching concurrently), else in order.
    async fn consume<F, Fut>(
        ch: &Channel,
        queue: &str,
        ack_first: bool,
        spawn: bool,
        on_message: F,
    ) -> Result<tokio::task::JoinHandle<()>, String>
    where
        F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut consumer = ch
            .basic_consume(
                queue.into(),
                "1".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(err)?;
        let on_message = Arc::new(on_message);
        Ok(tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let on_message = on_message.clone();
                let work = async move {
                    // RPC servers and reply consumers ack on receipt, listeners after handling.
                    if ack_first {
                        let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                        on_message(delivery.data).await;
                    } else {
                        let acker = delivery.acker.clone();
                        on_message(delivery.data).await;
                        let _ = acker.ack(BasicAckOptions::default()).await;
                    }
                };
                if spawn {
                    tokio::spawn(work);
                } else {
                    work.await;
                }
            }
        }))
    }

    /// A server of `echo` on `topic`: acks, decodes, replies to calls awaiting the
    /// confirm, counts.
    async fn server(
        b: &Bench,
        topic: &str,
        received: Arc<AtomicU64>,
    ) -> Result<(Link, tokio::task::JoinHandle<()>), String> {
        let mut link = Link::open(&b.amqp_url).await?;
        let ch = link.channel().await?;
        declare(&ch, topic).await?;
        let reply_ch = link.channel().await?;
        let task = consume(&ch, topic, true, true, move |body| {
            let reply_ch = reply_ch.clone();
            let received = received.clone();
            async move {
                if let Err(e) = serve_one(&reply_ch, &body).await {
                    eprintln!("raw server: {e}");
                }
                received.fetch_add(1, Ordering::Relaxed);
            }
        })
        .await?;
        Ok((link, task))
    }

    async fn serve_one(reply_ch: &Channel, body: &[u8]) -> Result<(), String> {
        let mut request = open_envelope(body)?;
        let result = request["args"]["data"].take();
        let Some(reply_q) = request.get("_reply_q").and_then(Value::as_str) else {
            return Ok(());
        };
        let reply = json!({
            "result": result, "failure": null, "ending": true,
            "_msg_id": request["_msg_id"], "_unique_id": hex_id(),
        });
        // Replies go through the default exchange, mandatory, as oslo's direct_send.
        publish(
            reply_ch,
            "",
            reply_q,
            true,
            &envelope(&reply),
            properties(None),
        )
        .await
    }

    /// The calling side: a publish channel and a reply queue whose consumer hands each
    /// reply to the caller waiting for its `_msg_id`.
    struct Caller {
        publish: Channel,
        reply_q: String,
        waiters: Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>,
        topic: String,
        payload: Arc<str>,
        overlap: bool,
    }

    impl Caller {
        async fn call(&self) -> Result<(), String> {
            let msg_id = hex_id();
            let (tx, rx) = oneshot::channel();
            // Registered before publishing: the reply may beat the confirm.
            self.waiters.lock().map_err(err)?.insert(msg_id.clone(), tx);
            let request = json!({
                "method": "echo", "args": {"data": &*self.payload},
                "_msg_id": msg_id, "_reply_q": self.reply_q, "_timeout": null,
                "_unique_id": hex_id(),
            });
            let expiration = CALL_TIMEOUT.as_millis().to_string();
            let confirm = self
                .publish
                .basic_publish(
                    EXCHANGE.into(),
                    self.topic.as_str().into(),
                    BasicPublishOptions::default(),
                    &envelope(&request),
                    properties(Some(&expiration)),
                )
                .await
                .map_err(err)?;
            let reply = tokio::time::timeout(CALL_TIMEOUT, rx);
            let reply = if self.overlap {
                let (confirmed, reply) = tokio::join!(confirm, reply);
                check(confirmed)?;
                reply
            } else {
                check(confirm.await)?;
                reply.await
            };
            let reply = reply
                .map_err(|_| "call timed out".to_string())?
                .map_err(err)?;
            match reply["result"].as_str() {
                Some(r) if r.len() == self.payload.len() && reply["failure"].is_null() => Ok(()),
                _ => Err(format!("unexpected reply {reply}")),
            }
        }
    }

    /// Calls `echo` on a raw server; `overlap` awaits the request's confirm and the
    /// reply together instead of one after the other.
    pub async fn calls(b: &Bench, row: Row, overlap: bool) -> Result<Measured, String> {
        let topic = b.topic(if overlap { "rawo" } else { "raw" }, row);
        let received = Arc::new(AtomicU64::new(0));
        let (server_link, server_task) = server(b, &topic, received).await?;
        let mut link = Link::open(&b.amqp_url).await?;
        let publish = link.channel().await?;
        let reply_ch = link.channel().await?;
        let reply_q = format!("reply_{}", hex_id());
        let mut args = FieldTable::default();
        args.insert(
            "x-expires".into(),
            AMQPValue::LongInt(REPLY_QUEUE_EXPIRES_MS),
        );
        reply_ch
            .queue_declare(
                reply_q.as_str().into(),
                QueueDeclareOptions::default(),
                args,
            )
            .await
            .map_err(err)?;
        let waiters: Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>> = Arc::default();
        let demux = waiters.clone();
        let reply_task = consume(&reply_ch, &reply_q, true, false, move |body| {
            let demux = demux.clone();
            async move {
                let Ok(mut reply) = open_envelope(&body) else {
                    return;
                };
                let msg_id = reply["_msg_id"].take();
                let waiter = msg_id.as_str().and_then(|id| demux.lock().ok()?.remove(id));
                if let Some(waiter) = waiter {
                    let _ = waiter.send(reply);
                }
            }
        })
        .await?;
        let caller = Arc::new(Caller {
            publish,
            reply_q: reply_q.clone(),
            waiters,
            topic: topic.clone(),
            payload: b.payload.clone(),
            overlap,
        });
        let result = drive(b.plan, row.workers, move || {
            let caller = caller.clone();
            async move { caller.call().await }
        })
        .await;
        link.close().await;
        server_link.close().await;
        reply_task.abort();
        server_task.abort();
        delete_queues(&b.amqp_url, &[topic, reply_q]).await;
        result
    }

    /// Casts to a raw server, or notifications to a raw listener: each publish awaits
    /// its confirm; concurrent senders share one channel.
    pub async fn sends(b: &Bench, row: Row) -> Result<Measured, String> {
        let topic = b.topic("raw", row);
        let received = Arc::new(AtomicU64::new(0));
        let (consumer_link, consumer_task, queue, key) = if row.kind == Kind::Cast {
            let (link, task) = server(b, &topic, received.clone()).await?;
            (link, task, topic.clone(), topic.clone())
        } else {
            // A listener without a pool consumes `<topic>.<priority>` and acks when done.
            let queue = format!("{topic}.info");
            let mut link = Link::open(&b.amqp_url).await?;
            let ch = link.channel().await?;
            declare(&ch, &queue).await?;
            let counter = received.clone();
            let task = consume(&ch, &queue, false, false, move |body| {
                let counter = counter.clone();
                async move {
                    if open_envelope(&body).is_ok() {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
            .await?;
            (link, task, queue.clone(), queue)
        };
        let mut link = Link::open(&b.amqp_url).await?;
        let publish_ch = link.channel().await?;
        if row.kind == Kind::Notify {
            // The notifier declares and binds the default queue, once per channel.
            declare(&publish_ch, &queue).await?;
        }
        let sent = Arc::new(AtomicU64::new(0));
        let state = Arc::new((publish_ch, key, b.payload.clone(), sent.clone()));
        let kind = row.kind;
        let result = drive(b.plan, row.workers, move || {
            let state = state.clone();
            async move {
                let (ch, key, payload, sent) = &*state;
                let inner = if kind == Kind::Cast {
                    json!({"method": "echo", "args": {"data": &**payload}, "_unique_id": hex_id()})
                } else {
                    json!({
                        "message_id": uuid::Uuid::new_v4().to_string(),
                        "publisher_id": "bench.host", "event_type": "bench.event",
                        "priority": "INFO", "payload": {"data": &**payload},
                        "timestamp": chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
                        "_unique_id": hex_id(),
                    })
                };
                publish(
                    ch,
                    EXCHANGE,
                    key,
                    false,
                    &envelope(&inner),
                    properties(None),
                )
                .await?;
                sent.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        })
        .await;
        let drained = match &result {
            Ok(_) => drain(&received, sent.load(Ordering::Relaxed)).await,
            Err(_) => Ok(()),
        };
        link.close().await;
        consumer_link.close().await;
        consumer_task.abort();
        delete_queues(&b.amqp_url, &[queue]).await;
        drained?;
        result
    }

    /// Whether the broker accepts an AMQP connection.
    pub async fn reachable(b: &Bench) -> Result<(), String> {
        let link = tokio::time::timeout(Duration::from_secs(10), Link::open(&b.amqp_url))
            .await
            .map_err(|_| "no answer within 10 s".to_string())??;
        link.close().await;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// Python oslo.messaging: tests/peers/bench_oslo.py, its client against its server.
// ---------------------------------------------------------------------------------

mod python {
    use super::*;
    use serde_json::Value;

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// The interpreter of the peer, as the interop tests find it: `OSLO_PEER_PYTHON`,
    /// else the virtualenv `scripts/services` makes; `None` if it does not exist.
    pub fn interpreter() -> Option<PathBuf> {
        let py = std::env::var_os("OSLO_PEER_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join(".venv/bin/python"));
        py.exists().then_some(py)
    }

    /// What one run of the peer reports: the oslo.messaging version, each row, and
    /// the client's reply queue (which oslo leaves behind to expire).
    pub struct Report {
        pub version: String,
        pub rows: HashMap<String, Result<Measured, String>>,
        pub reply_queue: Option<String>,
    }

    /// Runs `rows` for one payload size in one Python process (its server in another).
    pub fn run(b: &Bench, rows: &[Row]) -> Result<Report, String> {
        let py = interpreter().ok_or("no .venv: run scripts/services")?;
        let keys: Vec<String> = rows.iter().map(Row::key).collect();
        let mut cmd = std::process::Command::new(py);
        cmd.arg(repo().join("tests/peers/bench_oslo.py"))
            .args(["--url", &b.oslo_url])
            .args(["--payload", &b.payload.len().to_string()])
            .args(["--seconds", &b.plan.measure.as_secs_f64().to_string()])
            .args(["--warmup", &b.plan.warmup.as_secs_f64().to_string()])
            .args(["--rows", &keys.join(",")])
            .args([
                "--topic",
                &format!("bench_rabbit_{}_py_{}", b.run_id, b.payload.len()),
            ]);
        if let Some(m) = b.plan.max_ops {
            cmd.args(["--max-ops", &m.to_string()]);
        }
        // Every row bounded, plus the peer's start and stop.
        let per_row = b.plan.warmup + b.plan.measure + DRAIN_TIMEOUT + OP_TIMEOUT;
        let limit = per_row * rows.len() as u32 + SETUP_TIMEOUT;
        let (status, stdout, stderr) = output_within(cmd, limit)?;
        if !status.success() {
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            return Err(format!(
                "bench_oslo.py failed ({status}): {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            ));
        }
        let mut report = Report {
            version: "?".into(),
            rows: HashMap::new(),
            reply_queue: None,
        };
        for line in stdout.lines().filter(|l| l.starts_with('{')) {
            let v: Value = serde_json::from_str(line).map_err(err)?;
            if let Some(version) = v["oslo.messaging"].as_str() {
                report.version = version.into();
                continue;
            }
            if let Some(queue) = v["reply_queue"].as_str() {
                report.reply_queue = Some(queue.into());
                continue;
            }
            let Some(key) = v["row"].as_str() else {
                continue;
            };
            let ms = |k: &str| Duration::from_secs_f64(v[k].as_f64().unwrap_or(0.0) / 1000.0);
            let measured = match v["error"].as_str() {
                Some(e) => Err(e.to_string()),
                None => Ok(Measured {
                    throughput: v["throughput"].as_f64().unwrap_or(0.0),
                    p50: ms("p50_ms"),
                    p99: ms("p99_ms"),
                    note: v["note"].as_str().map(String::from),
                }),
            };
            report.rows.insert(key.to_string(), measured);
        }
        Ok(report)
    }

    /// Runs `cmd` to completion, killing it after `limit`; returns its exit status,
    /// stdout and stderr.
    fn output_within(
        mut cmd: std::process::Command,
        limit: Duration,
    ) -> Result<(std::process::ExitStatus, String, String), String> {
        use std::io::Read;
        use std::process::Stdio;
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(err)?;
        // Read both pipes while waiting, so a chatty child cannot block on a full pipe.
        let read_all = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_string(&mut text);
                }
                text
            })
        };
        let stdout = read_all(child.stdout.take().map(|p| Box::new(p) as _));
        let stderr = read_all(child.stderr.take().map(|p| Box::new(p) as _));
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().map_err(err)? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("bench_oslo.py did not finish within {limit:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        Ok((status, stdout, stderr))
    }

    /// The peer's queues, in case it died before cleaning up.
    pub fn queues(b: &Bench) -> Vec<String> {
        let topic = format!("bench_rabbit_{}_py_{}", b.run_id, b.payload.len());
        vec![
            topic.clone(),
            format!("{topic}.bench"),
            format!("{topic}_n.info"),
        ]
    }
}

// ---------------------------------------------------------------------------------
// Report: the machine and one Markdown table per payload size.
// ---------------------------------------------------------------------------------

/// One line of a table: a scenario and what each implementation measured.
struct Line {
    row: Row,
    /// The raw variant that overlaps the request's confirm with the reply.
    overlapped: bool,
    ours: Option<Result<Measured, String>>,
    raw: Option<Result<Measured, String>>,
    python: Option<Result<Measured, String>>,
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|x| x.1.trim())
        })
        .unwrap_or("unknown CPU");
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let rabbit = std::process::Command::new("rabbitmqctl")
        .arg("version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown (rabbitmqctl version failed)".into());
    // Other work on a small machine moves the numbers: say how busy it was.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "?".into());
    format!("{model}, {cpus} CPUs (load average {load} at start); RabbitMQ {rabbit}")
}

fn cells(m: &Option<Result<Measured, String>>) -> (String, String) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    match m {
        None => ("–".into(), "–".into()),
        Some(Ok(m)) => {
            let rate = match &m.note {
                Some(n) => format!("{:.0} ({n})", m.throughput),
                None => format!("{:.0}", m.throughput),
            };
            (rate, format!("{:.2} / {:.2}", ms(m.p50), ms(m.p99)))
        }
        Some(Err(e)) => {
            // Table cells hold one line; long errors are cut.
            let e: String = e.replace('|', "/").replace('\n', " ");
            let e = if e.chars().count() > 120 {
                format!("{}…", e.chars().take(120).collect::<String>())
            } else {
                e
            };
            (format!("error: {e}"), "–".into())
        }
    }
}

fn table(payload: usize, lines: &[Line], python_version: Option<&str>) -> String {
    let mut t = String::new();
    let py = python_version.map_or("Python".to_string(), |v| format!("oslo.messaging {v}"));
    let _ = writeln!(t, "\n#### {payload}-byte payload\n");
    let _ = writeln!(
        t,
        "| scenario | ours msg/s | ours p50 / p99 ms | raw lapin msg/s | raw p50 / p99 ms | ours / raw (target) | {py} msg/s | {py} p50 / p99 ms |"
    );
    let _ = writeln!(t, "|---|--:|--:|--:|--:|--:|--:|--:|");
    let mut last_ours: Option<f64> = None;
    for line in lines {
        let (label, ours) = if line.overlapped {
            // The ours cell of the row above, compared with the best raw can do.
            (
                format!(
                    "{}, raw awaits confirm and reply together",
                    line.row.label()
                ),
                ("″".to_string(), "″".to_string()),
            )
        } else {
            last_ours = match &line.ours {
                Some(Ok(m)) => Some(m.throughput),
                _ => None,
            };
            (line.row.label(), cells(&line.ours))
        };
        let raw = cells(&line.raw);
        let python = cells(&line.python);
        let ratio = match (last_ours, &line.raw) {
            (Some(o), Some(Ok(r))) if r.throughput > 0.0 => {
                let ratio = o / r.throughput;
                if line.overlapped {
                    format!("{ratio:.2}×")
                } else {
                    let target = line.row.target();
                    let mark = if ratio >= target { "✓" } else { "✗" };
                    format!("{ratio:.2}× {mark} (≥ {target:.1}×)")
                }
            }
            _ => "–".into(),
        };
        let _ = writeln!(
            t,
            "| {label} | {} | {} | {} | {} | {ratio} | {} | {} |",
            ours.0, ours.1, raw.0, raw.1, python.0, python.1
        );
    }
    t
}

// ---------------------------------------------------------------------------------
// Main: every row of every payload size, then the tables.
// ---------------------------------------------------------------------------------

/// Whether a failure is expected rather than a defect: ours without the rabbit feature.
fn excusable(e: &str) -> bool {
    !cfg!(feature = "rabbit") && e.contains("no driver for scheme")
}

/// Bounds a whole row (setup, measurement, drain, teardown).
async fn bounded(
    plan: Plan,
    row: impl Future<Output = Result<Measured, String>>,
) -> Result<Measured, String> {
    let limit = plan.warmup + plan.measure + DRAIN_TIMEOUT + OP_TIMEOUT + SETUP_TIMEOUT;
    tokio::time::timeout(limit, row)
        .await
        .unwrap_or_else(|_| Err(format!("the row did not finish within {limit:?}")))
}

async fn run_row(b: &Bench, only: Only, row: Row) -> Vec<Line> {
    let progress = |who: &str| {
        eprintln!(
            "rabbit bench: {} B, {}, {who}",
            b.payload.len(),
            row.label()
        )
    };
    let ours = if only.ours {
        progress("ours");
        Some(match row.kind {
            Kind::Notify => bounded(b.plan, ours::notify(b, row)).await,
            _ => bounded(b.plan, ours::rpc(b, row)).await,
        })
    } else {
        None
    };
    let raw = if only.raw {
        progress("raw lapin");
        Some(match row.kind {
            Kind::Call => bounded(b.plan, raw::calls(b, row, false)).await,
            _ => bounded(b.plan, raw::sends(b, row)).await,
        })
    } else {
        None
    };
    let mut lines = vec![Line {
        row,
        overlapped: false,
        ours,
        raw,
        python: None,
    }];
    if only.raw && row.kind == Kind::Call {
        progress("raw lapin, confirm overlapped");
        lines.push(Line {
            row,
            overlapped: true,
            ours: None,
            raw: Some(bounded(b.plan, raw::calls(b, row, true)).await),
            python: None,
        });
    }
    lines
}

#[tokio::main]
async fn main() -> ExitCode {
    // Errors of lapin and the driver (a connection lost mid-row) explain failed rows;
    // RUST_LOG shows more.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .init();
    let options = match Options::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rabbit bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (oslo_url, amqp_url) = broker_urls();
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let only = options.only;
    let mut failed = false;
    if only.python && python::interpreter().is_none() {
        eprintln!(
            "rabbit bench: no Python with oslo.messaging (.venv or OSLO_PEER_PYTHON): run \
             scripts/services, or pass --no-python"
        );
        return ExitCode::FAILURE;
    }
    let mut out = String::new();
    if options.full {
        let _ = writeln!(out, "RabbitMQ benchmark on {}", machine());
        let _ = writeln!(
            out,
            "{} s per row after a {} s warm-up; latency per call, or per publish for casts and \
             notifications (awaiting the publisher confirm); consumers drain every row.",
            options.seconds,
            options.plan().warmup.as_secs_f64()
        );
    }
    for (i, &size) in options.payloads.iter().enumerate() {
        let b = Bench {
            oslo_url: oslo_url.clone(),
            amqp_url: amqp_url.clone(),
            plan: options.plan(),
            payload: payload(size),
            run_id: run_id.clone(),
        };
        if let Err(e) = raw::reachable(&b).await {
            eprintln!(
                "rabbit bench: RabbitMQ unreachable at {amqp_url} ({e}); start it with scripts/services"
            );
            return ExitCode::FAILURE;
        }
        let rows = options.rows();
        let mut lines = Vec::new();
        for &row in &rows {
            lines.extend(run_row(&b, only, row).await);
        }
        let mut version = None;
        // The peer takes seconds to start and stop: a smoke pass runs it once.
        if only.python && (options.full || i == 0) {
            eprintln!("rabbit bench: {size} B, Python oslo.messaging");
            let report = tokio::task::spawn_blocking({
                let (b, rows) = (b.clone(), rows.clone());
                move || python::run(&b, &rows)
            })
            .await
            .map_err(err)
            .and_then(|r| r);
            let mut queues = python::queues(&b);
            if let Ok(python::Report {
                reply_queue: Some(q),
                ..
            }) = &report
            {
                queues.push(q.clone());
            }
            delete_queues(&amqp_url, &queues).await;
            match report {
                Ok(mut report) => {
                    version = Some(report.version.clone());
                    for line in lines.iter_mut().filter(|l| !l.overlapped) {
                        line.python = Some(
                            report
                                .rows
                                .remove(&line.row.key())
                                .unwrap_or_else(|| Err("no result".into())),
                        );
                    }
                }
                Err(e) => {
                    for line in lines.iter_mut().filter(|l| !l.overlapped) {
                        line.python = Some(Err(e.clone()));
                    }
                }
            }
        }
        for line in &lines {
            for (who, cell) in [
                ("ours", &line.ours),
                ("raw", &line.raw),
                ("python", &line.python),
            ] {
                if let Some(Err(e)) = cell {
                    eprintln!("rabbit bench: {size} B, {}, {who}: {e}", line.row.label());
                    failed |= !excusable(e);
                }
            }
        }
        out.push_str(&table(size, &lines, version.as_deref()));
    }
    println!("{out}");
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
