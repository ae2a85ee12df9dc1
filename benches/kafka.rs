//! Notification and RPC throughput and latency over Kafka: this project's Kafka driver,
//! raw rdkafka doing the same by hand, and Python oslo.messaging's Kafka driver, on one
//! broker in one run; the RPC rows put our Kafka driver next to our RabbitMQ driver.
//!
//! ```text
//! cargo bench --bench kafka                                     # full run, Markdown table
//! cargo bench --bench kafka -- --seconds 5 --only ours,raw --rows notify-1,notify-n
//! cargo bench --bench kafka -- --no-python --callers 256 --drain 100000
//! cargo bench --bench kafka -- --rows drain --ours-query max_poll_records=100000
//! ```
//!
//! Rows (keys for `--rows`):
//!
//! - `notify-1`: notifications one at a time, each awaiting its delivery report, with
//!   `linger.ms` 0 (`producer_batch_timeout = 0`, the default).
//! - `notify-n`: notifications from `--callers` (1024) concurrent tasks on one producer,
//!   each awaiting its delivery report, with `linger.ms` 5 (`producer_batch_timeout =
//!   0.005`). Neither sending row runs a consumer.
//! - `e2e`: notifier → listener, a live stream sent from `--e2e-callers` (256) tasks as
//!   `notify-n` sends while one listener (its own consumer group) consumes:
//!   notifications sent in the window, over the time until the last of them was
//!   handled, and latency from the start of the send to the handler (the payload
//!   carries the send time). Python sends from `--py-threads` (4) threads with oslo's
//!   notifier, which does not wait for delivery.
//! - `drain`: a listener joins a new group on a topic pre-filled with `--drain` (50 000)
//!   notifications and handles them all; the rate is from the first handled to the
//!   last, so the group join is left out. Ours, raw and Python read the same topic.
//! - `calls-1`, `calls-64`: RPC calls of `echo`, one at a time and from 64 concurrent
//!   callers, ours over Kafka; the "raw" columns hold ours over RabbitMQ.
//!
//! Both sides use the same librdkafka settings: what the driver sets (see
//! `driver-kafka/src/options.rs`) is written out here for raw rdkafka, topics have the
//! driver's 4 partitions, and records go to explicit partitions in turn as the driver
//! sends them. Every consumer (ours, raw, Python) fetches with `fetch.wait.max.ms` 10:
//! tansu answers a fetch only when that expires.
//!
//! Topics are never deleted: tansu 0.6.0 deletes every topic of the cluster when asked
//! to delete one. Restart it on fresh storage now and then (`scripts/services` does
//! past 1 GB); it slows down as its storage grows. The RPC rows run last, after the
//! Python rows, because our RPC client deletes its reply topic at cleanup.
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) every row runs a handful of
//! messages as a smoke test that asserts nothing about speed. The brokers are
//! `KAFKA_URL` (default `kafka://127.0.0.1:9092`) and `RABBIT_URL` (default
//! `rabbit://guest:guest@127.0.0.1:5672/`); `scripts/services` starts both. The Python
//! rows need `<repo>/.venv` (or `OSLO_PEER_PYTHON`) with oslo.messaging and
//! confluent-kafka; without it the program fails unless given `--no-python`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// The default Kafka broker.
const DEFAULT_KAFKA_URL: &str = "kafka://127.0.0.1:9092";
/// The default RabbitMQ broker of the RPC comparison rows.
const DEFAULT_RABBIT_URL: &str = "rabbit://guest:guest@127.0.0.1:5672/";
/// `fetch.wait.max.ms` of every consumer.
const FETCH_WAIT_MS: u64 = 10;
/// Partitions of every topic: the driver's `topic_partitions` default.
const PARTITIONS: usize = 4;
/// `linger.ms` of the pipelined rows (`producer_batch_timeout = 0.005`).
const PIPELINED_LINGER_MS: u64 = 5;
/// Concurrent callers of the calls row that has many.
const RPC_CALLERS: usize = 64;
/// Call timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a consumer may take to get everything a row sent.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(180);
/// How long one operation may take: a lost broker must fail the row, not hang it.
const OP_TIMEOUT: Duration = Duration::from_secs(70);
/// Room for a row's setup and teardown (group joins, topic creation and deletion).
const SETUP_TIMEOUT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------
// Scenarios, options and the measurement loops.
// ---------------------------------------------------------------------------------

/// One line of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    /// Notifications one at a time, linger 0.
    NotifyOne,
    /// Notifications from many concurrent callers, linger 5 ms.
    NotifyMany,
    /// Notifier → listener, live.
    EndToEnd,
    /// A listener consuming a pre-filled topic.
    Drain,
    /// RPC calls one at a time.
    CallsOne,
    /// RPC calls from 64 callers.
    CallsMany,
}

impl Row {
    const ALL: [Row; 6] = [
        Row::NotifyOne,
        Row::NotifyMany,
        Row::EndToEnd,
        Row::Drain,
        Row::CallsOne,
        Row::CallsMany,
    ];

    fn key(self) -> &'static str {
        match self {
            Row::NotifyOne => "notify-1",
            Row::NotifyMany => "notify-n",
            Row::EndToEnd => "e2e",
            Row::Drain => "drain",
            Row::CallsOne => "calls-1",
            Row::CallsMany => "calls-64",
        }
    }

    fn label(self, o: &Options) -> String {
        match self {
            Row::NotifyOne => "notifications, 1 caller, delivery awaited (linger.ms 0)".to_string(),
            Row::NotifyMany => format!(
                "notifications, {} concurrent callers, delivery awaited (linger.ms {PIPELINED_LINGER_MS})",
                o.callers
            ),
            Row::EndToEnd => format!(
                "notifier → listener end to end, live: {} callers (linger.ms {PIPELINED_LINGER_MS}); handled/s, send → handler latency",
                o.e2e_callers
            ),
            Row::Drain => format!(
                "listener alone: a new group handles {} pre-filled notifications (first → last)",
                o.drain
            ),
            Row::CallsOne => {
                "RPC calls, 1 caller: ours over Kafka; raw columns: ours over RabbitMQ".to_string()
            }
            Row::CallsMany => format!(
                "RPC calls, {RPC_CALLERS} concurrent callers: ours over Kafka; raw columns: ours over RabbitMQ"
            ),
        }
    }

    /// The lowest acceptable ours/raw throughput ratio, if any.
    fn target(self) -> Option<f64> {
        match self {
            Row::NotifyOne => Some(0.9),
            Row::NotifyMany => Some(0.5),
            Row::Drain => Some(0.7),
            _ => None,
        }
    }

    /// The lowest acceptable ours/Python throughput ratio, if any.
    fn python_target(self) -> Option<f64> {
        match self {
            Row::EndToEnd => Some(4.0),
            _ => None,
        }
    }

    fn is_rpc(self) -> bool {
        matches!(self, Row::CallsOne | Row::CallsMany)
    }

    /// Whether Python oslo.messaging has this row (its Kafka driver sends
    /// notifications without awaiting delivery, and has no RPC).
    fn has_python(self) -> bool {
        matches!(self, Row::EndToEnd | Row::Drain)
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
    /// Concurrent callers of `notify-n` (and of the drain row's pre-fill).
    callers: usize,
    /// Concurrent callers of `e2e`.
    e2e_callers: usize,
    /// Python's sender threads in `e2e`.
    py_threads: usize,
    /// Notifications pre-filled for `drain`.
    drain: u64,
    /// Row keys to run; empty: all.
    rows: Vec<String>,
    /// Extra query parameters of our Kafka URL (`--ours-query a=1&b=2`), to try
    /// driver options.
    ours_query: String,
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
            payloads: vec![100],
            seconds: 5.0,
            callers: 1024,
            e2e_callers: 256,
            py_threads: 4,
            drain: 50_000,
            rows: Vec::new(),
            ours_query: String::new(),
        };
        let mut drain_given = false;
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
                "--callers" => {
                    o.callers = value("--callers")?
                        .parse()
                        .map_err(|e| format!("--callers: {e}"))?;
                    if o.callers == 0 {
                        return Err("--callers must be at least 1".into());
                    }
                }
                "--e2e-callers" => {
                    o.e2e_callers = value("--e2e-callers")?
                        .parse()
                        .map_err(|e| format!("--e2e-callers: {e}"))?;
                    if o.e2e_callers == 0 {
                        return Err("--e2e-callers must be at least 1".into());
                    }
                }
                "--py-threads" => {
                    o.py_threads = value("--py-threads")?
                        .parse()
                        .map_err(|e| format!("--py-threads: {e}"))?;
                    if o.py_threads == 0 {
                        return Err("--py-threads must be at least 1".into());
                    }
                }
                "--drain" => {
                    o.drain = value("--drain")?
                        .parse()
                        .map_err(|e| format!("--drain: {e}"))?;
                    if o.drain < 2 {
                        return Err("--drain must be at least 2".into());
                    }
                    drain_given = true;
                }
                "--ours-query" => o.ours_query = value("--ours-query")?,
                "--rows" => {
                    o.rows = value("--rows")?
                        .split(',')
                        .map(|r| r.trim().to_string())
                        .collect();
                    if let Some(bad) = o
                        .rows
                        .iter()
                        .find(|r| !Row::ALL.iter().any(|row| row.key() == r.as_str()))
                    {
                        let keys: Vec<&str> = Row::ALL.iter().map(|r| r.key()).collect();
                        return Err(format!("--rows takes {}; got {bad:?}", keys.join(", ")));
                    }
                }
                // Whatever else cargo or a test runner passes (filters, --nocapture).
                _ => {}
            }
        }
        if !o.full && !drain_given {
            o.drain = 100;
        }
        Ok(o)
    }

    fn rows(&self) -> Vec<Row> {
        Row::ALL
            .into_iter()
            .filter(|r| self.rows.is_empty() || self.rows.iter().any(|k| k == r.key()))
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

/// The brokers, and what every row of one payload size shares.
#[derive(Debug, Clone)]
struct Bench {
    /// Our Kafka URL without query, e.g. `kafka://127.0.0.1:9092/`.
    kafka_url: String,
    /// `bootstrap.servers` of raw rdkafka.
    bootstrap: String,
    /// Our RabbitMQ URL.
    rabbit_url: String,
    /// lapin's form of it, to delete the RPC rows' queues.
    amqp_url: String,
    plan: Plan,
    payload: Arc<str>,
    callers: usize,
    e2e_callers: usize,
    py_threads: usize,
    drain: u64,
    /// Makes topic and group names unique to this run.
    run_id: String,
    /// `--ours-query`.
    ours_query: String,
}

impl Bench {
    /// A topic name unique to this run, implementation and row.
    fn topic(&self, implementation: &str, row: Row) -> String {
        format!(
            "bench_kafka_{}_{implementation}_{}_{}",
            self.run_id,
            row.key().replace('-', "_"),
            self.payload.len()
        )
    }

    /// Our Kafka URL with the consumers' fetch wait and the producer's linger.
    fn ours_kafka(&self, linger_ms: u64) -> String {
        let mut url = format!(
            // tansu 0.6 deletes every topic when asked to delete one.
            "{}?fetch_wait_max_ms={FETCH_WAIT_MS}&delete_reply_topics=false&producer_batch_timeout={}",
            self.kafka_url,
            linger_ms as f64 / 1000.0
        );
        if !self.ours_query.is_empty() {
            url.push('&');
            url.push_str(&self.ours_query);
        }
        url
    }
}

/// The argument of `echo` and the payload of notifications: `{"data": "<payload>"}`.
#[derive(Serialize)]
struct Data<'a> {
    data: &'a str,
}

/// A notification payload that carries its send time (ns since the Unix epoch, the
/// wall clock, so that another process can read it).
#[derive(Serialize)]
struct Stamped<'a> {
    data: &'a str,
    t: u64,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Builds a payload of `len` ASCII characters that need no JSON escaping.
fn payload(len: usize) -> Arc<str> {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|i| alphabet[i % alphabet.len()] as char)
        .collect::<String>()
        .into()
}

/// (our URL without query, ending in `/`; `bootstrap.servers`) from `KAFKA_URL`.
fn kafka_urls() -> Result<(String, String), String> {
    let url = std::env::var("KAFKA_URL").unwrap_or_else(|_| DEFAULT_KAFKA_URL.into());
    let url = url.split('?').next().unwrap_or_default().to_string();
    let rest = url
        .strip_prefix("kafka://")
        .ok_or_else(|| format!("KAFKA_URL {url:?} is not a kafka:// URL"))?;
    let (authority, vhost) = rest.split_once('/').unwrap_or((rest, ""));
    if !vhost.is_empty() {
        return Err("the benchmark takes a KAFKA_URL without a virtual host".into());
    }
    // Hosts without credentials, as `host:port` (IPv6 stays in brackets).
    let hosts: Vec<String> = authority
        .split(',')
        .map(|h| h.rsplit_once('@').map_or(h, |x| x.1))
        .map(|h| {
            if h.ends_with(']') || !h.contains(':') {
                format!("{h}:9092")
            } else {
                h.to_string()
            }
        })
        .collect();
    Ok((format!("kafka://{authority}/"), hosts.join(",")))
}

/// (our RabbitMQ URL, lapin's form of it).
fn rabbit_urls() -> (String, String) {
    let url = std::env::var("RABBIT_URL").unwrap_or_else(|_| DEFAULT_RABBIT_URL.into());
    let (scheme, rest) = url.split_once("://").unwrap_or(("rabbit", &url));
    let (authority, vhost) = rest.split_once('/').unwrap_or((rest, ""));
    let (oslo_vhost, amqp_vhost) = match vhost {
        "" | "%2f" | "%2F" => ("", "%2f"),
        v => (v, v),
    };
    let amqp =
        std::env::var("AMQP_URL").unwrap_or_else(|_| format!("amqp://{authority}/{amqp_vhost}"));
    let scheme = if scheme.starts_with("amqp") {
        "rabbit"
    } else {
        scheme
    };
    (format!("{scheme}://{authority}/{oslo_vhost}"), amqp)
}

/// A short error string from anything displayable.
fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// What a row reports, whichever implementation measured it.
#[derive(Debug, Clone)]
struct Measured {
    throughput: f64,
    /// None for rows without latency (the drain).
    p50: Option<Duration>,
    p99: Option<Duration>,
    note: Option<String>,
}

/// Throughput and p50/p99 of `latencies` (any order) over `elapsed`.
fn measured(mut latencies: Vec<Duration>, elapsed: Duration) -> Result<Measured, String> {
    let n = latencies.len();
    if n == 0 || elapsed.is_zero() {
        return Err("no operation completed in the measured window".into());
    }
    latencies.sort_unstable();
    let at = |q: usize| latencies[(n * q / 100).min(n - 1)];
    Ok(Measured {
        throughput: n as f64 / elapsed.as_secs_f64(),
        p50: Some(at(50)),
        p99: Some(at(99)),
        note: None,
    })
}

/// Runs `op` from `workers` concurrent tasks: a warm-up, then the measured window.
/// Operations starting inside the window are timed; the window ends when the last of
/// them finishes. The first failure ends the row. Returns the result and how many
/// operations completed in all (warm-up included).
async fn drive<F, Fut>(plan: Plan, workers: usize, op: F) -> (Result<Measured, String>, u64)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let window = start + plan.warmup;
    let end = window + plan.measure;
    let total = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (op, total) = (op.clone(), total.clone());
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
                total.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, String>((latencies, last))
        });
    }
    let mut all = Vec::new();
    let mut last = window;
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        match joined.map_err(err).and_then(|r| r) {
            Ok((latencies, worker_last)) => {
                all.extend(latencies);
                last = last.max(worker_last);
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    let sent = total.load(Ordering::Relaxed);
    match failure {
        Some(e) => (Err(e), sent),
        None => (measured(all, last.saturating_duration_since(window)), sent),
    }
}

/// What a listener saw: a count, and (send time, handling time) of each stamped
/// notification, both in ns since the Unix epoch.
#[derive(Default)]
struct Arrivals {
    received: AtomicU64,
    samples: Mutex<Vec<(u64, u64)>>,
    /// Monotonic first and last handling times, for the drain.
    first_last: Mutex<Option<(Instant, Instant)>>,
}

impl Arrivals {
    /// Records one handled notification sent at `sent_ns` (0: not stamped).
    fn record(&self, sent_ns: u64) {
        let now = Instant::now();
        if sent_ns != 0 {
            let at = now_ns();
            self.samples
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((sent_ns, at));
        }
        {
            let mut fl = self.first_last.lock().unwrap_or_else(|e| e.into_inner());
            match &mut *fl {
                Some((_, last)) => *last = now,
                None => *fl = Some((now, now)),
            }
        }
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    /// Throughput and latency of the notifications sent in `[window, end)` (ns): their
    /// count over the time from `window` until the last of them was handled.
    fn live(&self, window: u64, end: u64) -> Result<Measured, String> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let mut latencies = Vec::new();
        let mut last = window;
        for &(sent, at) in samples.iter().filter(|(s, _)| *s >= window && *s < end) {
            latencies.push(Duration::from_nanos(at.saturating_sub(sent)));
            last = last.max(at);
        }
        measured(latencies, Duration::from_nanos(last - window))
    }

    /// The drain's rate: notifications handled from the first to the last.
    fn drained(&self) -> Result<Measured, String> {
        let n = self.received.load(Ordering::Relaxed);
        let fl = *self.first_last.lock().unwrap_or_else(|e| e.into_inner());
        match fl {
            Some((first, last)) if n > 1 && last > first => Ok(Measured {
                throughput: (n - 1) as f64 / (last - first).as_secs_f64(),
                p50: None,
                p99: None,
                note: None,
            }),
            _ => Err(format!("{n} notifications handled: no rate")),
        }
    }
}

/// Waits until `received` reaches `expected`.
async fn drain(received: &AtomicU64, expected: u64) -> Result<(), String> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let got = received.load(Ordering::Relaxed);
        if got >= expected {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the consumer got {got} of {expected} notifications within {DRAIN_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A live stream: `workers` tasks send stamped notifications through `send` for the
/// warm-up and the window while a listener records them into `arrivals`; then waits
/// for the listener to have them all.
async fn stream<F, Fut>(
    plan: Plan,
    workers: usize,
    arrivals: Arc<Arrivals>,
    send: F,
) -> Result<Measured, String>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let start_ns = now_ns();
    let window_ns = start_ns + plan.warmup.as_nanos() as u64;
    let end_ns = window_ns + plan.measure.as_nanos() as u64;
    let before = arrivals.received.load(Ordering::Relaxed);
    let (sent, total) = drive(plan, workers, move || send(now_ns())).await;
    sent?;
    drain(&arrivals.received, before + total).await?;
    arrivals.live(window_ns, end_ns)
}

// ---------------------------------------------------------------------------------
// Ours: the messaging facade on the kafka (and, for comparison, rabbit) driver.
// ---------------------------------------------------------------------------------

mod ours {
    use super::*;
    use messaging::notify::{Notification, NotificationListener, Notifier, Priority};
    use messaging::{Config, Context, Endpoint, RemoteError, RpcClient, RpcServer, Target};

    #[derive(serde::Deserialize)]
    struct Echo {
        data: String,
    }

    async fn transport(url: &str) -> Result<messaging::Transport, String> {
        messaging::registry()
            .transport(url, &Config::default())
            .await
            .map_err(err)
    }

    fn notifier(t: &messaging::Transport, topic: &str) -> Notifier {
        Notifier::new(t, "bench.host").topics([topic.to_string()])
    }

    /// Notifications from `workers` tasks on one notifier, each awaiting delivery.
    pub async fn send(
        b: &Bench,
        row: Row,
        workers: usize,
        linger_ms: u64,
    ) -> Result<Measured, String> {
        let topic = b.topic("ours", row);
        let t = transport(&b.ours_kafka(linger_ms)).await?;
        let notifier = Arc::new((notifier(&t, &topic), b.payload.clone()));
        let (result, _) = drive(b.plan, workers, move || {
            let notifier = notifier.clone();
            async move {
                let (notifier, payload) = &*notifier;
                notifier
                    .try_notify(
                        &Context::new(),
                        "bench.event",
                        Priority::Info,
                        Data { data: payload },
                    )
                    .await
                    .map_err(err)
            }
        })
        .await;
        t.cleanup().await;
        result
    }

    /// A listener on `topic` in group `pool` recording into `arrivals`.
    async fn listener(
        t: &messaging::Transport,
        topic: &str,
        pool: &str,
        arrivals: Arc<Arrivals>,
    ) -> Result<NotificationListener, String> {
        NotificationListener::new(t, [Target::topic(topic.to_string())])
            .pool(pool.to_string())
            .on(Priority::Info, move |n: Notification| {
                arrivals.record(n.payload["t"].as_u64().unwrap_or(0));
                async {}
            })
            .start()
            .await
            .map_err(err)
    }

    /// Sends stamped notifications from `workers` tasks (linger `linger_ms`).
    async fn stamped_sends(
        t: &messaging::Transport,
        topic: &str,
        payload: Arc<str>,
        plan: Plan,
        workers: usize,
        arrivals: Arc<Arrivals>,
    ) -> Result<Measured, String> {
        let state = Arc::new((notifier(t, topic), payload));
        stream(plan, workers, arrivals, move |t| {
            let state = state.clone();
            async move {
                let (notifier, payload) = &*state;
                notifier
                    .try_notify(
                        &Context::new(),
                        "bench.event",
                        Priority::Info,
                        Stamped { data: payload, t },
                    )
                    .await
                    .map_err(err)
            }
        })
        .await
    }

    /// Notifier → listener, live.
    pub async fn end_to_end(b: &Bench) -> Result<Measured, String> {
        let topic = b.topic("ours", Row::EndToEnd);
        let listener_t = transport(&b.ours_kafka(0)).await?;
        let notifier_t = transport(&b.ours_kafka(PIPELINED_LINGER_MS)).await?;
        let arrivals = Arc::new(Arrivals::default());
        let result = match listener(
            &listener_t,
            &topic,
            &format!("{topic}_group"),
            arrivals.clone(),
        )
        .await
        {
            Ok(listener) => {
                let result = stamped_sends(
                    &notifier_t,
                    &topic,
                    b.payload.clone(),
                    b.plan,
                    b.e2e_callers,
                    arrivals,
                )
                .await;
                listener.stop().await;
                let _ = listener.wait().await;
                result
            }
            Err(e) => Err(e),
        };
        notifier_t.cleanup().await;
        listener_t.cleanup().await;
        result
    }

    /// Fills `<topic>.info` with `n` stamped notifications (many callers, linger 5 ms):
    /// the drain row's topic, read by every implementation.
    pub async fn prefill(b: &Bench, topic: &str, n: u64) -> Result<(), String> {
        let t = transport(&b.ours_kafka(PIPELINED_LINGER_MS)).await?;
        let state = Arc::new((notifier(&t, topic), b.payload.clone(), AtomicU64::new(0)));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..b.callers.max(1) {
            let state = state.clone();
            tasks.spawn(async move {
                let (notifier, payload, next) = &*state;
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    notifier
                        .try_notify(
                            &Context::new(),
                            "bench.event",
                            Priority::Info,
                            Stamped {
                                data: payload,
                                t: now_ns(),
                            },
                        )
                        .await
                        .map_err(err)?;
                }
                Ok::<_, String>(())
            });
        }
        let mut result = Ok(());
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined.map_err(err).and_then(|r| r) {
                result = Err(e);
            }
        }
        t.cleanup().await;
        result
    }

    /// A listener in a new group handles the `n` notifications of `<topic>.info`.
    pub async fn drain_topic(b: &Bench, topic: &str, n: u64) -> Result<Measured, String> {
        let t = transport(&b.ours_kafka(0)).await?;
        let arrivals = Arc::new(Arrivals::default());
        let group = format!("{topic}_ours_{}", uuid::Uuid::new_v4().simple());
        let result = match listener(&t, topic, &group, arrivals.clone()).await {
            Ok(listener) => {
                let drained = drain(&arrivals.received, n).await;
                listener.stop().await;
                let _ = listener.wait().await;
                drained.and_then(|()| arrivals.drained())
            }
            Err(e) => Err(e),
        };
        t.cleanup().await;
        result
    }

    /// Calls `echo` on an `RpcServer` over `url` from `workers` callers.
    pub async fn calls(
        url: &str,
        topic: &str,
        plan: Plan,
        workers: usize,
        payload: Arc<str>,
    ) -> Result<Measured, String> {
        let server_t = transport(url).await?;
        let client_t = transport(url).await?;
        let api = Endpoint::new().method("echo", |_ctx: Context, Echo { data }| async move {
            Ok::<_, RemoteError>(data)
        });
        let server = RpcServer::new(&server_t, Target::topic(topic.to_string()).server("bench"))
            .endpoint(api)
            .max_concurrency(workers.max(1))
            .start()
            .await
            .map_err(err)?;
        let client =
            RpcClient::new(&client_t, Target::topic(topic.to_string())).timeout(CALL_TIMEOUT);
        let state = Arc::new((client, payload));
        let (result, _) = drive(plan, workers, move || {
            let state = state.clone();
            async move {
                let (client, payload) = &*state;
                let echoed: String = client
                    .call(&Context::new(), "echo", Data { data: payload })
                    .await
                    .map_err(err)?;
                if echoed.len() != payload.len() {
                    return Err("echo returned a different payload".into());
                }
                Ok(())
            }
        })
        .await;
        let _ = server.stop().await;
        let _ = server.wait().await;
        client_t.cleanup().await;
        server_t.cleanup().await;
        result
    }
}

// ---------------------------------------------------------------------------------
// Raw rdkafka: the driver's settings and oslo's records, by hand.
// ---------------------------------------------------------------------------------

mod raw {
    use super::*;
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::{ClientContext, DefaultClientContext};
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
    use rdkafka::error::RDKafkaErrorCode;
    use rdkafka::message::Message;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use rdkafka::util::Timeout;
    use serde_json::{Value, json};

    /// How long an admin request may take.
    const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);
    /// The driver's `producer_delivery_timeout` (30 s), as `message.timeout.ms`.
    const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

    /// What every client of the driver sets (`KafkaOptions::client_config`).
    fn client_config(b: &Bench) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &b.bootstrap)
            .set("security.protocol", "plaintext")
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "10000");
        c
    }

    /// The driver's producer settings at its defaults, with `linger.ms` as given
    /// (`KafkaOptions::producer_config`).
    fn producer_config(b: &Bench, linger_ms: u64) -> ClientConfig {
        let mut c = client_config(b);
        c.set("linger.ms", linger_ms.to_string())
            .set("batch.num.messages", "16384")
            .set("compression.codec", "none")
            .set(
                "message.timeout.ms",
                DELIVERY_TIMEOUT.as_millis().to_string(),
            )
            .set("allow.auto.create.topics", "false");
        c
    }

    /// The driver's consumer settings at its defaults, fetch wait 10 ms
    /// (`KafkaOptions::consumer_config`): offsets stored by the application after
    /// handling, committed by librdkafka every second.
    fn consumer_config(b: &Bench, group: &str) -> ClientConfig {
        let mut c = client_config(b);
        c.set("group.id", group)
            .set("max.partition.fetch.bytes", "1048576")
            .set("fetch.wait.max.ms", FETCH_WAIT_MS.to_string())
            .set("session.timeout.ms", "45000")
            .set("heartbeat.interval.ms", "3000")
            .set("enable.partition.eof", "false")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("allow.auto.create.topics", "false");
        c
    }

    fn admin(b: &Bench) -> Result<AdminClient<DefaultClientContext>, String> {
        client_config(b).create().map_err(err)
    }

    /// Creates `topic` with the driver's partition count, as the driver does.
    pub async fn create_topic(b: &Bench, topic: &str) -> Result<(), String> {
        let admin = admin(b)?;
        let new = NewTopic::new(topic, PARTITIONS as i32, TopicReplication::Fixed(-1));
        let options = AdminOptions::new()
            .operation_timeout(Some(ADMIN_TIMEOUT))
            .request_timeout(Some(ADMIN_TIMEOUT));
        let results = admin.create_topics([&new], &options).await.map_err(err)?;
        match results.into_iter().next() {
            Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) | None => {}
            Some(Err((_, code))) => return Err(format!("cannot create {topic}: {code}")),
        }
        // Until the metadata has it.
        wait_metadata(b, topic, Instant::now() + ADMIN_TIMEOUT).await
    }

    async fn wait_metadata(b: &Bench, topic: &str, deadline: Instant) -> Result<(), String> {
        let admin = Arc::new(admin(b)?);
        loop {
            let (admin2, name) = (admin.clone(), topic.to_string());
            let found = tokio::task::spawn_blocking(move || {
                admin2
                    .inner()
                    .fetch_metadata(Some(&name), ADMIN_TIMEOUT)
                    .ok()
                    .is_some_and(|m| {
                        m.topics().iter().any(|t| {
                            t.name() == name && t.error().is_none() && !t.partitions().is_empty()
                        })
                    })
            })
            .await
            .map_err(err)?;
            if found {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("topic {topic} not in the metadata"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many records the partitions of `topic` hold (high minus low watermarks).
    pub async fn records(b: &Bench, topic: &str) -> Result<u64, String> {
        let consumer: BaseConsumer = client_config(b).create().map_err(err)?;
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || {
            let mut total = 0;
            for p in 0..PARTITIONS as i32 {
                let (low, high) = consumer
                    .fetch_watermarks(&topic, p, ADMIN_TIMEOUT)
                    .map_err(err)?;
                total += (high - low).max(0) as u64;
            }
            Ok(total)
        })
        .await
        .map_err(err)?
    }

    /// oslo's Kafka record of a notification: the 2.0 envelope with a nested context.
    fn notification(payload: Value) -> Vec<u8> {
        let inner = json!({
            "message_id": uuid::Uuid::new_v4().to_string(),
            "publisher_id": "bench.host",
            "event_type": "bench.event",
            "priority": "INFO",
            "payload": payload,
            "timestamp": chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
            "_context": {},
        });
        serde_json::to_vec(&json!({"oslo.version": "2.0", "oslo.message": inner.to_string()}))
            .unwrap_or_default()
    }

    /// A producer sending to the partitions of one topic in turn, awaiting each
    /// delivery report, as the driver does.
    struct Sender {
        producer: FutureProducer,
        topic: String,
        turn: AtomicUsize,
    }

    impl Sender {
        fn new(b: &Bench, topic: &str, linger_ms: u64) -> Result<Sender, String> {
            Ok(Sender {
                producer: producer_config(b, linger_ms).create().map_err(err)?,
                topic: topic.to_string(),
                turn: AtomicUsize::new(0),
            })
        }

        async fn send(&self, body: &[u8]) -> Result<(), String> {
            let partition = self.turn.fetch_add(1, Ordering::Relaxed) % PARTITIONS;
            let record = FutureRecord::<(), [u8]>::to(&self.topic)
                .payload(body)
                .partition(partition as i32);
            self.producer
                .send(record, Timeout::After(DELIVERY_TIMEOUT))
                .await
                .map(|_| ())
                .map_err(|(e, _)| e.to_string())
        }
    }

    /// Notifications from `workers` tasks on one producer, each awaiting delivery.
    pub async fn send(
        b: &Bench,
        row: Row,
        workers: usize,
        linger_ms: u64,
    ) -> Result<Measured, String> {
        let topic = format!("{}.info", b.topic("raw", row));
        create_topic(b, &topic).await?;
        let sender = Arc::new((Sender::new(b, &topic, linger_ms)?, b.payload.clone()));
        let (result, _) = drive(b.plan, workers, move || {
            let sender = sender.clone();
            async move {
                let (sender, payload) = &*sender;
                sender
                    .send(&notification(json!({"data": &**payload})))
                    .await
            }
        })
        .await;
        result
    }

    /// Tells when the group gave the consumer its partitions.
    struct Ready(Arc<AtomicBool>);

    impl ClientContext for Ready {}

    impl ConsumerContext for Ready {
        fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
            if let Rebalance::Assign(tpl) = rebalance
                && tpl.count() > 0
            {
                self.0.store(true, Ordering::Relaxed);
            }
        }
    }

    /// A group consumer on its own thread, as the driver's: polls, decodes each
    /// record (the envelope, then the message inside it), records it, stores its
    /// offset; librdkafka commits stored offsets every second.
    pub struct Listener {
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Listener {
        pub async fn start(
            b: &Bench,
            topic: &str,
            group: &str,
            arrivals: Arc<Arrivals>,
        ) -> Result<Listener, String> {
            let ready = Arc::new(AtomicBool::new(false));
            let consumer: BaseConsumer<Ready> = consumer_config(b, group)
                .create_with_context(Ready(ready.clone()))
                .map_err(err)?;
            consumer.subscribe(&[topic]).map_err(err)?;
            let stop = Arc::new(AtomicBool::new(false));
            let thread = {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
                            continue;
                        };
                        let sent = decode(m.payload().unwrap_or_default());
                        arrivals.record(sent.unwrap_or(0));
                        let _ = consumer.store_offset_from_message(&m);
                    }
                    let _ = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync);
                })
            };
            let mut listener = Listener {
                stop,
                thread: Some(thread),
            };
            let deadline = Instant::now() + SETUP_TIMEOUT;
            while !ready.load(Ordering::Relaxed) {
                if Instant::now() >= deadline {
                    listener.close().await;
                    return Err("the raw consumer got no partitions".into());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(listener)
        }

        pub async fn close(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(thread) = self.thread.take() {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
        }
    }

    /// The send time of a notification record, if it has one.
    fn decode(body: &[u8]) -> Option<u64> {
        let outer: Value = serde_json::from_slice(body).ok()?;
        let inner: Value = serde_json::from_str(outer.get("oslo.message")?.as_str()?).ok()?;
        inner["payload"]["t"].as_u64()
    }

    /// Producer → consumer, live, with the settings of `notify-n`.
    pub async fn end_to_end(b: &Bench) -> Result<Measured, String> {
        let topic = format!("{}.info", b.topic("raw", Row::EndToEnd));
        create_topic(b, &topic).await?;
        let arrivals = Arc::new(Arrivals::default());
        let sender = Arc::new((
            Sender::new(b, &topic, PIPELINED_LINGER_MS)?,
            b.payload.clone(),
        ));
        let mut listener =
            Listener::start(b, &topic, &format!("{topic}_group"), arrivals.clone()).await?;
        let result = stream(b.plan, b.e2e_callers, arrivals, move |t| {
            let sender = sender.clone();
            async move {
                let (sender, payload) = &*sender;
                sender
                    .send(&notification(json!({"data": &**payload, "t": t})))
                    .await
            }
        })
        .await;
        listener.close().await;
        result
    }

    /// A consumer in a new group handles the `n` notifications of `topic`.
    pub async fn drain_topic(b: &Bench, topic: &str, n: u64) -> Result<Measured, String> {
        let arrivals = Arc::new(Arrivals::default());
        let group = format!("{topic}_raw_{}", uuid::Uuid::new_v4().simple());
        let mut listener = Listener::start(b, topic, &group, arrivals.clone()).await?;
        let drained = drain(&arrivals.received, n).await;
        listener.close().await;
        drained.and_then(|()| arrivals.drained())
    }

    /// Whether the broker answers a metadata request.
    pub async fn reachable(b: &Bench) -> Result<(), String> {
        let admin = Arc::new(admin(b)?);
        tokio::task::spawn_blocking(move || {
            admin
                .inner()
                .fetch_metadata(None, Duration::from_secs(10))
                .map(|_| ())
                .map_err(err)
        })
        .await
        .map_err(err)?
    }
}

/// Deletes RabbitMQ queues, best effort.
async fn delete_queues(amqp_url: &str, queues: &[String]) {
    use lapin::options::QueueDeleteOptions;
    let work = async {
        let Ok(conn) = lapin::Connection::connect(amqp_url, Default::default()).await else {
            return;
        };
        for q in queues {
            if let Ok(ch) = conn.create_channel().await {
                let _ = ch
                    .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                    .await;
                let _ = ch.close(200, "bench done".into()).await;
            }
        }
        let _ = conn.close(200, "bench done".into()).await;
    };
    let _ = tokio::time::timeout(SETUP_TIMEOUT, work).await;
}

// ---------------------------------------------------------------------------------
// Python oslo.messaging: tests/peers/bench_oslo.py in its Kafka mode.
// ---------------------------------------------------------------------------------

mod python {
    use super::*;
    use serde_json::Value;

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// The interpreter of the peer: `OSLO_PEER_PYTHON`, else the virtualenv that
    /// `scripts/services` makes; `None` if it does not exist.
    pub fn interpreter() -> Option<PathBuf> {
        let py = std::env::var_os("OSLO_PEER_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join(".venv/bin/python"));
        py.exists().then_some(py)
    }

    /// The oslo.messaging version and each row's result.
    pub struct Report {
        pub version: String,
        pub rows: HashMap<String, Result<Measured, String>>,
    }

    /// Runs the Python rows of `rows`: `e2e` on topics of its own, `drain` on the
    /// pre-filled `drain_topic` (the name without `.info`).
    pub fn run(b: &Bench, rows: &[Row], drain_topic: Option<&str>) -> Result<Report, String> {
        let py = interpreter().ok_or("no .venv: run scripts/services")?;
        let keys: Vec<String> = rows
            .iter()
            .filter(|r| r.has_python())
            .map(|r| match r {
                Row::EndToEnd => format!("e2e-{}", b.py_threads),
                other => other.key().to_string(),
            })
            .collect();
        let mut cmd = std::process::Command::new(py);
        cmd.arg(repo().join("tests/peers/bench_oslo.py"))
            .args(["--url", &b.kafka_url])
            .args(["--payload", &b.payload.len().to_string()])
            .args(["--seconds", &b.plan.measure.as_secs_f64().to_string()])
            .args(["--warmup", &b.plan.warmup.as_secs_f64().to_string()])
            .args(["--rows", &keys.join(",")])
            .args(["--topic", &b.topic("py", Row::EndToEnd)])
            .args(["--fetch-wait-ms", &FETCH_WAIT_MS.to_string()])
            .args(["--linger-ms", &PIPELINED_LINGER_MS.to_string()])
            .args(["--partitions", &PARTITIONS.to_string()]);
        if let Some(topic) = drain_topic {
            cmd.args(["--drain-topic", topic])
                .args(["--drain-count", &b.drain.to_string()]);
        }
        if let Some(m) = b.plan.max_ops {
            cmd.args(["--max-ops", &m.to_string()]);
        }
        let per_row = b.plan.warmup + b.plan.measure + DRAIN_TIMEOUT + OP_TIMEOUT;
        let limit = per_row * keys.len() as u32 + SETUP_TIMEOUT;
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
        };
        for line in stdout.lines().filter(|l| l.starts_with('{')) {
            let v: Value = serde_json::from_str(line).map_err(err)?;
            if let Some(version) = v["oslo.messaging"].as_str() {
                report.version = version.into();
                continue;
            }
            let Some(key) = v["row"].as_str() else {
                continue;
            };
            let ms = |k: &str| v[k].as_f64().map(|x| Duration::from_secs_f64(x / 1000.0));
            let measured = match v["error"].as_str() {
                Some(e) => Err(e.to_string()),
                None => Ok(Measured {
                    throughput: v["throughput"].as_f64().unwrap_or(0.0),
                    p50: ms("p50_ms"),
                    p99: ms("p99_ms"),
                    note: v["note"].as_str().map(String::from),
                }),
            };
            let key = key.split('-').next().unwrap_or(key).to_string();
            report.rows.insert(key, measured);
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
}

// ---------------------------------------------------------------------------------
// Report: the machine and one Markdown table per payload size.
// ---------------------------------------------------------------------------------

/// One line of a table: a scenario and what each implementation measured.
struct Line {
    row: Row,
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
    let version = |cmd: &str, arg: &str| {
        std::process::Command::new(cmd)
            .arg(arg)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let kafka = version("tansu", "--version").unwrap_or_else(|| "broker of unknown version".into());
    let rabbit = version("rabbitmqctl", "version").unwrap_or_else(|| "unknown".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "?".into());
    format!(
        "{model}, {cpus} CPUs (load average {load} at start); Kafka: {kafka}; RabbitMQ {rabbit}"
    )
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
            let latency = match (m.p50, m.p99) {
                (Some(p50), Some(p99)) => format!("{:.2} / {:.2}", ms(p50), ms(p99)),
                _ => "–".into(),
            };
            (rate, latency)
        }
        Some(Err(e)) => {
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

/// `ours / other` with its target, if both measured.
fn ratio(
    ours: &Option<Result<Measured, String>>,
    other: &Option<Result<Measured, String>>,
    target: Option<f64>,
    what: &str,
) -> String {
    match (ours, other) {
        (Some(Ok(o)), Some(Ok(r))) if r.throughput > 0.0 => {
            let ratio = o.throughput / r.throughput;
            match target {
                Some(t) => {
                    let mark = if ratio >= t { "✓" } else { "✗" };
                    format!("{ratio:.2}× {mark} (≥ {t:.1}×)")
                }
                None => format!("{ratio:.2}×{what}"),
            }
        }
        _ => "–".into(),
    }
}

fn table(o: &Options, payload: usize, lines: &[Line], python_version: Option<&str>) -> String {
    let mut t = String::new();
    let py = python_version.map_or("Python".to_string(), |v| format!("oslo.messaging {v}"));
    let _ = writeln!(t, "\n#### {payload}-byte payload\n");
    let _ = writeln!(
        t,
        "| scenario | ours msg/s | ours p50 / p99 ms | raw rdkafka msg/s | raw p50 / p99 ms | ours / raw (target) | {py} msg/s | {py} p50 / p99 ms | ours / {py} (target) |"
    );
    let _ = writeln!(t, "|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for line in lines {
        let ours = cells(&line.ours);
        let raw = cells(&line.raw);
        let python = cells(&line.python);
        let vs_raw = ratio(
            &line.ours,
            &line.raw,
            line.row.target(),
            if line.row.is_rpc() {
                " (Kafka / RabbitMQ, no target)"
            } else {
                " (no target)"
            },
        );
        let vs_python = ratio(
            &line.ours,
            &line.python,
            line.row.python_target(),
            " (no target)",
        );
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {vs_raw} | {} | {} | {vs_python} |",
            line.row.label(o),
            ours.0,
            ours.1,
            raw.0,
            raw.1,
            python.0,
            python.1
        );
    }
    t
}

// ---------------------------------------------------------------------------------
// Main: every row, then the table.
// ---------------------------------------------------------------------------------

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

/// The drain row's topic (without `.info`), if it still holds what was pre-filled.
async fn prefilled<'a>(b: &Bench, drain_topic: Option<&'a str>) -> Result<&'a str, String> {
    let topic = drain_topic.ok_or("the topic was not pre-filled")?;
    let held = raw::records(b, &format!("{topic}.info")).await?;
    if held < b.drain {
        // tansu 0.6.0 deletes every topic when asked to delete one (its
        // topic_delete_by.sql matches the cluster, not the topic), and the driver
        // deletes its reply topic when an RPC client's transport is cleaned up.
        return Err(format!(
            "the pre-filled topic holds {held} of {} notifications: deleted meanwhile?",
            b.drain
        ));
    }
    Ok(topic)
}

/// Runs one row for ours and raw (Python runs later, all its rows in one process).
/// `drain_topic` is the pre-filled topic of the drain row.
async fn run_row(b: &Bench, o: &Options, row: Row, drain_topic: Option<&str>) -> Line {
    let progress =
        |who: &str| eprintln!("kafka bench: {} B, {}, {who}", b.payload.len(), row.key());
    let only = o.only;
    let (ours, raw) = match row {
        Row::NotifyOne | Row::NotifyMany => {
            let (workers, linger) = if row == Row::NotifyOne {
                (1, 0)
            } else {
                (b.callers, PIPELINED_LINGER_MS)
            };
            let ours = if only.ours {
                progress("ours");
                Some(bounded(b.plan, ours::send(b, row, workers, linger)).await)
            } else {
                None
            };
            let raw = if only.raw {
                progress("raw rdkafka");
                Some(bounded(b.plan, raw::send(b, row, workers, linger)).await)
            } else {
                None
            };
            (ours, raw)
        }
        Row::EndToEnd => {
            let ours = if only.ours {
                progress("ours");
                Some(bounded(b.plan, ours::end_to_end(b)).await)
            } else {
                None
            };
            let raw = if only.raw {
                progress("raw rdkafka");
                Some(bounded(b.plan, raw::end_to_end(b)).await)
            } else {
                None
            };
            (ours, raw)
        }
        Row::Drain => {
            let ours = if only.ours {
                progress("ours");
                Some(match prefilled(b, drain_topic).await {
                    Ok(t) => bounded(b.plan, ours::drain_topic(b, t, b.drain)).await,
                    Err(e) => Err(e),
                })
            } else {
                None
            };
            let raw = if only.raw {
                progress("raw rdkafka");
                Some(match prefilled(b, drain_topic).await {
                    Ok(t) => {
                        bounded(b.plan, raw::drain_topic(b, &format!("{t}.info"), b.drain)).await
                    }
                    Err(e) => Err(e),
                })
            } else {
                None
            };
            (ours, raw)
        }
        Row::CallsOne | Row::CallsMany => {
            let workers = if row == Row::CallsOne { 1 } else { RPC_CALLERS };
            // Ours over Kafka in the "ours" columns, ours over RabbitMQ in the "raw" ones.
            let ours = if only.ours {
                progress("ours over Kafka");
                let topic = b.topic("ours", row);
                let result = bounded(
                    b.plan,
                    ours::calls(&b.ours_kafka(0), &topic, b.plan, workers, b.payload.clone()),
                )
                .await;
                Some(result)
            } else {
                None
            };
            let raw = if only.raw {
                progress("ours over RabbitMQ");
                let topic = b.topic("rabbit", row);
                let result = bounded(
                    b.plan,
                    ours::calls(&b.rabbit_url, &topic, b.plan, workers, b.payload.clone()),
                )
                .await;
                delete_queues(&b.amqp_url, &[topic.clone(), format!("{topic}.bench")]).await;
                Some(result)
            } else {
                None
            };
            (ours, raw)
        }
    };
    Line {
        row,
        ours,
        raw,
        python: None,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
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
            eprintln!("kafka bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (kafka_url, bootstrap) = match kafka_urls() {
        Ok(u) => u,
        Err(e) => {
            eprintln!("kafka bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (rabbit_url, amqp_url) = rabbit_urls();
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let only = options.only;
    if only.python && python::interpreter().is_none() {
        eprintln!(
            "kafka bench: no Python with oslo.messaging (.venv or OSLO_PEER_PYTHON): run \
             scripts/services, or pass --no-python"
        );
        return ExitCode::FAILURE;
    }
    let mut out = String::new();
    if options.full {
        let _ = writeln!(out, "Kafka benchmark on {}", machine());
        let _ = writeln!(
            out,
            "{} s per row after a {} s warm-up. Topics of {PARTITIONS} partitions, records sent to \
             them in turn; every consumer fetches with fetch.wait.max.ms {FETCH_WAIT_MS}. Sending \
             rows: latency per notification, awaiting its delivery report, no consumer running. \
             End to end: notifications sent in the window, over the time until the last of them \
             was handled; latency from the start of the send to the handler; oslo's Kafka \
             notifier does not wait for delivery, so its senders outrun its listener and its \
             latency is mostly queueing. Drain: rate from the first handled to the last. RPC: \
             ours over Kafka (linger.ms 0) next to ours over RabbitMQ.",
            options.seconds,
            options.plan().warmup.as_secs_f64()
        );
    } else {
        let _ = writeln!(
            out,
            "Smoke pass (no --bench): a few messages per row; the numbers and marks mean nothing."
        );
    }
    let mut failed = false;
    for (i, &size) in options.payloads.iter().enumerate() {
        let b = Bench {
            kafka_url: kafka_url.clone(),
            bootstrap: bootstrap.clone(),
            rabbit_url: rabbit_url.clone(),
            amqp_url: amqp_url.clone(),
            plan: options.plan(),
            payload: payload(size),
            callers: options.callers,
            e2e_callers: options.e2e_callers,
            py_threads: options.py_threads,
            drain: options.drain,
            run_id: run_id.clone(),
            ours_query: options.ours_query.clone(),
        };
        if let Err(e) = raw::reachable(&b).await {
            eprintln!(
                "kafka bench: no Kafka broker answers at {bootstrap} ({e}); start it with scripts/services"
            );
            return ExitCode::FAILURE;
        }
        let rows = options.rows();
        let python_rows =
            only.python && (options.full || i == 0) && rows.iter().any(|r| r.has_python());
        // The drain row's topic, filled once for every implementation.
        let drain_base = b.topic("all", Row::Drain);
        let drain_topic = if rows.contains(&Row::Drain) && (only.ours || only.raw || python_rows) {
            eprintln!(
                "kafka bench: {size} B, pre-filling {} notifications",
                b.drain
            );
            match bounded(b.plan, async {
                ours::prefill(&b, &drain_base, b.drain)
                    .await
                    .map(|()| Measured {
                        throughput: 0.0,
                        p50: None,
                        p99: None,
                        note: None,
                    })
            })
            .await
            {
                Ok(_) => Some(drain_base.clone()),
                Err(e) => {
                    eprintln!("kafka bench: pre-filling failed: {e}");
                    None
                }
            }
        } else {
            None
        };
        // The RPC rows come last, after Python's: the RPC client's transport deletes its
        // reply topic when cleaned up, and tansu 0.6.0 then deletes every topic (the
        // pre-filled one too).
        let (notify_rows, rpc_rows): (Vec<Row>, Vec<Row>) = rows.iter().partition(|r| !r.is_rpc());
        let mut lines = Vec::new();
        for &row in &notify_rows {
            lines.push(run_row(&b, &options, row, drain_topic.as_deref()).await);
        }
        let mut version = None;
        if python_rows {
            eprintln!("kafka bench: {size} B, Python oslo.messaging");
            let py_drain = match prefilled(&b, drain_topic.as_deref()).await {
                Ok(t) => Some(t.to_string()),
                Err(e) => {
                    eprintln!("kafka bench: {size} B, Python drain: {e}");
                    None
                }
            };
            let report = tokio::task::spawn_blocking({
                let (b, rows, drain_topic) = (b.clone(), rows.clone(), py_drain);
                move || python::run(&b, &rows, drain_topic.as_deref())
            })
            .await
            .map_err(err)
            .and_then(|r| r);
            match report {
                Ok(mut report) => {
                    version = Some(report.version.clone());
                    for line in lines.iter_mut().filter(|l| l.row.has_python()) {
                        line.python = Some(
                            report
                                .rows
                                .remove(line.row.key())
                                .unwrap_or_else(|| Err("no result".into())),
                        );
                    }
                }
                Err(e) => {
                    for line in lines.iter_mut().filter(|l| l.row.has_python()) {
                        line.python = Some(Err(e.clone()));
                    }
                }
            }
        }
        for &row in &rpc_rows {
            lines.push(run_row(&b, &options, row, drain_topic.as_deref()).await);
        }
        for line in &lines {
            for (who, cell) in [
                ("ours", &line.ours),
                ("raw", &line.raw),
                ("python", &line.python),
            ] {
                if let Some(Err(e)) = cell {
                    eprintln!("kafka bench: {size} B, {}, {who}: {e}", line.row.key());
                    failed = true;
                }
            }
        }
        out.push_str(&table(&options, size, &lines, version.as_deref()));
    }
    println!("{out}");
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
