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
//! to delete one, so our Kafka URL sets `delete_reply_topics=false` and our RPC client
//! leaves its reply topic behind at cleanup. Restart tansu on fresh storage now and
//! then (`scripts/services` does past 1 GB); it slows down as its storage grows. The
//! RPC rows run last, after the Python rows, which keeps the pre-filled drain topic
//! safe should a reply topic be deleted all the same.
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) every row runs a handful of
//! messages as a smoke test that asserts nothing about speed. The brokers are
//! `KAFKA_URL` (default `kafka://127.0.0.1:9092`) and `RABBIT_URL` (default
//! `rabbit://guest:guest@127.0.0.1:5672/`); `scripts/services` starts both. The Python
//! rows need `<repo>/.venv` (or `OSLO_PEER_PYTHON`) with oslo.messaging and
//! confluent-kafka; without it the program fails unless given `--no-python`.

mod common;

use std::fmt::Write as _;
use std::future::Future;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use common::{
    CALL_TIMEOUT, Cell, Data, Echo, Measured, Plan, Profile, Table, bounded, cells, delete_queues,
    drain, drive, err, measured, python, side,
};

/// What differs from the RabbitMQ benchmark in what they share.
static PROFILE: Profile = Profile {
    name: "kafka",
    about: "Notification and RPC throughput and latency over Kafka: ours, raw rdkafka and \
            Python oslo.messaging",
    payloads: &[100],
    seconds: 5.0,
    drain_timeout: Duration::from_secs(180),
    // Group joins, topic creation.
    setup_timeout: Duration::from_secs(90),
    counted: "notifications",
};
/// The default Kafka broker.
const DEFAULT_KAFKA_URL: &str = "kafka://127.0.0.1:9092";
/// `fetch.wait.max.ms` of every consumer.
const FETCH_WAIT_MS: u64 = 10;
/// Partitions of every topic: the driver's `topic_partitions` default.
const PARTITIONS: usize = 4;
/// `linger.ms` of the pipelined rows (`producer_batch_timeout = 0.005`).
const PIPELINED_LINGER_MS: u64 = 5;
/// Concurrent callers of the calls row that has many.
const RPC_CALLERS: usize = 64;

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
                o.extra.callers
            ),
            Row::EndToEnd => format!(
                "notifier → listener end to end, live: {} callers (linger.ms {PIPELINED_LINGER_MS}); handled/s, send → handler latency",
                o.extra.e2e_callers
            ),
            Row::Drain => format!(
                "listener alone: a new group handles {} pre-filled notifications (first → last)",
                o.extra.drain
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

/// The Kafka benchmark's own options.
#[derive(Debug, Clone, clap::Args)]
struct Extra {
    /// Concurrent callers of `notify-n` (and of the drain row's pre-fill).
    #[arg(long, default_value_t = 1024, value_parser = common::at_least(1usize))]
    callers: usize,
    /// Concurrent callers of `e2e`.
    #[arg(long, default_value_t = 256, value_parser = common::at_least(1usize))]
    e2e_callers: usize,
    /// Python's sender threads in `e2e`.
    #[arg(long, default_value_t = 4, value_parser = common::at_least(1usize))]
    py_threads: usize,
    /// Notifications pre-filled for `drain` (100 in a smoke pass unless given).
    #[arg(long, default_value_t = 50_000, value_parser = common::at_least(2u64))]
    drain: u64,
    /// Extra query parameters of our Kafka URL (`--ours-query a=1&b=2`), to try
    /// driver options.
    #[arg(long, value_name = "QUERY", default_value = "")]
    ours_query: String,
}

/// Command-line options: those every benchmark has, and ours.
type Options = common::Options<Extra>;

fn parse_options() -> Options {
    let keys: Vec<&str> = Row::ALL.iter().map(|r| r.key()).collect();
    Options::parse(&PROFILE, &keys, |o, given| {
        if !o.full && given.value_source("drain") != Some(clap::parser::ValueSource::CommandLine) {
            o.extra.drain = 100;
        }
    })
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
        common::topic(
            self.plan,
            &self.run_id,
            implementation,
            row.key(),
            self.payload.len(),
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
    drain(plan, &arrivals.received, before + total).await?;
    arrivals.live(window_ns, end_ns)
}

// ---------------------------------------------------------------------------------
// Ours: the messaging facade on the kafka (and, for comparison, rabbit) driver.
// ---------------------------------------------------------------------------------

mod ours {
    use super::*;
    use messaging::notify::{Notification, NotificationListener, Notifier, Priority};
    use messaging::{Config, Context, Endpoint, RemoteError, RpcClient, RpcServer, Target};

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
                common::notify(notifier, Data { data: payload }).await
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
                common::notify(notifier, Stamped { data: payload, t }).await
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
                    let stamped = Stamped {
                        data: payload,
                        t: now_ns(),
                    };
                    common::notify(notifier, stamped).await?;
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
                let drained = drain(b.plan, &arrivals.received, n).await;
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
                common::echo_call(client, payload).await
            }
        })
        .await;
        common::finish_row(&server, &client_t, &server_t).await;
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
            let deadline = Instant::now() + PROFILE.setup_timeout;
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
        let drained = drain(b.plan, &arrivals.received, n).await;
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

// ---------------------------------------------------------------------------------
// Python oslo.messaging: tests/peers/bench_oslo.py in its Kafka mode.
// ---------------------------------------------------------------------------------

/// Runs the Python rows of `rows`: `e2e` on topics of its own, `drain` on the
/// pre-filled `drain_topic` (the name without `.info`). The report has each row under
/// its key (`e2e`, not the `e2e-<threads>` the peer is given).
fn run_python(
    b: &Bench,
    rows: &[Row],
    drain_topic: Option<&str>,
) -> Result<python::Report, String> {
    let keys: Vec<String> = rows
        .iter()
        .filter(|r| r.has_python())
        .map(|r| match r {
            Row::EndToEnd => format!("e2e-{}", b.py_threads),
            other => other.key().to_string(),
        })
        .collect();
    let topic = b.topic("py", Row::EndToEnd);
    let mut cmd = python::command(b.plan, &b.kafka_url, b.payload.len(), &keys, &topic)?;
    cmd.args(["--fetch-wait-ms", &FETCH_WAIT_MS.to_string()])
        .args(["--linger-ms", &PIPELINED_LINGER_MS.to_string()])
        .args(["--partitions", &PARTITIONS.to_string()]);
    if let Some(topic) = drain_topic {
        cmd.args(["--drain-topic", topic])
            .args(["--drain-count", &b.drain.to_string()]);
    }
    let mut report = python::run(b.plan, cmd, keys.len())?;
    report.rows = report
        .rows
        .into_iter()
        .map(|(key, m)| (key.split('-').next().unwrap_or(&key).to_string(), m))
        .collect();
    Ok(report)
}

// ---------------------------------------------------------------------------------
// Report: the machine and one Markdown table per payload size.
// ---------------------------------------------------------------------------------

/// One line of a table: a scenario and what each implementation measured.
struct Line {
    row: Row,
    ours: Cell,
    raw: Cell,
    python: Cell,
}

fn machine() -> String {
    let kafka =
        common::version("tansu", "--version").unwrap_or_else(|| "broker of unknown version".into());
    let rabbit = common::version("rabbitmqctl", "version").unwrap_or_else(|| "unknown".into());
    common::machine(&format!("Kafka: {kafka}; RabbitMQ {rabbit}"))
}

fn table(o: &Options, payload: usize, lines: &[Line], python_version: Option<&str>) -> String {
    let mut t = Table::new(payload, "raw rdkafka", python_version, true);
    for line in lines {
        let ours = common::throughput(&line.ours);
        let untargeted = if line.row.is_rpc() {
            " (Kafka / RabbitMQ, no target)"
        } else {
            " (no target)"
        };
        let vs_raw = common::ratio(ours, &line.raw, line.row.target(), untargeted);
        let vs_python = common::ratio(ours, &line.python, line.row.python_target(), " (no target)");
        t.line(
            &line.row.label(o),
            [&cells(&line.ours), &cells(&line.raw), &cells(&line.python)],
            &vs_raw,
            Some(&vs_python),
        );
    }
    t.finish()
}

// ---------------------------------------------------------------------------------
// Main: every row, then the table.
// ---------------------------------------------------------------------------------

/// The drain row's topic (without `.info`), if it still holds what was pre-filled.
async fn prefilled<'a>(b: &Bench, drain_topic: Option<&'a str>) -> Result<&'a str, String> {
    let topic = drain_topic.ok_or("the topic was not pre-filled")?;
    let held = raw::records(b, &format!("{topic}.info")).await?;
    if held < b.drain {
        // tansu 0.6.0 deletes every topic when asked to delete one (its
        // topic_delete_by.sql matches the cluster, not the topic): a reply topic
        // deleted despite `delete_reply_topics=false` would take this one with it.
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
    let progress = |who: &'static str| {
        move || PROFILE.say(format!("{} B, {}, {who}", b.payload.len(), row.key()))
    };
    let only = o.only;
    let (ours, raw) = match row {
        Row::NotifyOne | Row::NotifyMany => {
            let (workers, linger) = if row == Row::NotifyOne {
                (1, 0)
            } else {
                (b.callers, PIPELINED_LINGER_MS)
            };
            let ours = ours::send(b, row, workers, linger);
            let ours = side(only.ours, b.plan, progress("ours"), ours).await;
            let raw = raw::send(b, row, workers, linger);
            let raw = side(only.raw, b.plan, progress("raw rdkafka"), raw).await;
            (ours, raw)
        }
        Row::EndToEnd => {
            let ours = side(only.ours, b.plan, progress("ours"), ours::end_to_end(b)).await;
            let raw = side(
                only.raw,
                b.plan,
                progress("raw rdkafka"),
                raw::end_to_end(b),
            )
            .await;
            (ours, raw)
        }
        Row::Drain => {
            let ours = async {
                let topic = prefilled(b, drain_topic).await?;
                ours::drain_topic(b, topic, b.drain).await
            };
            let ours = side(only.ours, b.plan, progress("ours"), ours).await;
            let raw = async {
                let topic = prefilled(b, drain_topic).await?;
                raw::drain_topic(b, &format!("{topic}.info"), b.drain).await
            };
            let raw = side(only.raw, b.plan, progress("raw rdkafka"), raw).await;
            (ours, raw)
        }
        Row::CallsOne | Row::CallsMany => {
            let workers = if row == Row::CallsOne { 1 } else { RPC_CALLERS };
            // Ours over Kafka in the "ours" columns, ours over RabbitMQ in the "raw" ones.
            let (url, topic) = (b.ours_kafka(0), b.topic("ours", row));
            let ours = ours::calls(&url, &topic, b.plan, workers, b.payload.clone());
            let ours = side(only.ours, b.plan, progress("ours over Kafka"), ours).await;
            let topic = b.topic("rabbit", row);
            let raw = ours::calls(&b.rabbit_url, &topic, b.plan, workers, b.payload.clone());
            let raw = side(only.raw, b.plan, progress("ours over RabbitMQ"), raw).await;
            if raw.is_some() {
                let queues = [topic.clone(), format!("{topic}.bench")];
                delete_queues(b.plan, &b.amqp_url, &queues).await;
            }
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
    common::main(&PROFILE, run()).await
}

/// Every row, then the table; whether a row failed.
async fn run() -> Result<bool, String> {
    let options = parse_options();
    let (kafka_url, bootstrap) = kafka_urls()?;
    options.check_python()?;
    let (rabbit_url, amqp_url) = common::rabbit_urls(None);
    let run_id = common::run_id();
    let only = options.only;
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
        let x = &options.extra;
        let b = Bench {
            kafka_url: kafka_url.clone(),
            bootstrap: bootstrap.clone(),
            rabbit_url: rabbit_url.clone(),
            amqp_url: amqp_url.clone(),
            plan: options.plan(),
            payload: common::payload(size),
            callers: x.callers,
            e2e_callers: x.e2e_callers,
            py_threads: x.py_threads,
            drain: x.drain,
            run_id: run_id.clone(),
            ours_query: x.ours_query.clone(),
        };
        raw::reachable(&b).await.map_err(|e| {
            format!("no Kafka broker answers at {bootstrap} ({e}); start it with scripts/services")
        })?;
        let rows: Vec<Row> = Row::ALL
            .into_iter()
            .filter(|r| options.wants(r.key()))
            .collect();
        let python_rows = options.python_at(i) && rows.iter().any(|r| r.has_python());
        // The drain row's topic, filled once for every implementation.
        let drain_base = b.topic("all", Row::Drain);
        let drain_topic = if rows.contains(&Row::Drain) && (only.ours || only.raw || python_rows) {
            PROFILE.say(format!("{size} B, pre-filling {} notifications", b.drain));
            match bounded(b.plan, ours::prefill(&b, &drain_base, b.drain)).await {
                Ok(()) => Some(drain_base.clone()),
                Err(e) => {
                    PROFILE.say(format!("pre-filling failed: {e}"));
                    None
                }
            }
        } else {
            None
        };
        // The RPC rows come last, after Python's: should an RPC client delete its reply
        // topic after all (our URL sets delete_reply_topics=false), tansu 0.6.0 would
        // delete every topic, the pre-filled one too.
        let (notify_rows, rpc_rows): (Vec<Row>, Vec<Row>) = rows.iter().partition(|r| !r.is_rpc());
        let mut lines = Vec::new();
        for &row in &notify_rows {
            lines.push(run_row(&b, &options, row, drain_topic.as_deref()).await);
        }
        let mut version = None;
        if python_rows {
            PROFILE.say(format!("{size} B, Python oslo.messaging"));
            let py_drain = match prefilled(&b, drain_topic.as_deref()).await {
                Ok(t) => Some(t.to_string()),
                Err(e) => {
                    PROFILE.say(format!("{size} B, Python drain: {e}"));
                    None
                }
            };
            let report = tokio::task::spawn_blocking({
                let (b, rows, drain_topic) = (b.clone(), rows.clone(), py_drain);
                move || run_python(&b, &rows, drain_topic.as_deref())
            })
            .await
            .map_err(err)
            .and_then(|r| r);
            version = python::fill(
                report,
                lines
                    .iter_mut()
                    .filter(|l| l.row.has_python())
                    .map(|l| (l.row.key(), &mut l.python)),
            );
        }
        for &row in &rpc_rows {
            lines.push(run_row(&b, &options, row, drain_topic.as_deref()).await);
        }
        for line in &lines {
            let cells = [
                ("ours", &line.ours),
                ("raw", &line.raw),
                ("python", &line.python),
            ];
            failed |= common::failures(b.plan, size, line.row.key(), cells, |_| false);
        }
        out.push_str(&table(&options, size, &lines, version.as_deref()));
    }
    println!("{out}");
    Ok(failed)
}
