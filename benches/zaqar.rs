//! Notification and RPC throughput and latency over Zaqar: this project's Zaqar driver,
//! raw HTTP doing the same requests by hand, and python-zaqarclient (through
//! `tests/peers/bench_zaqar.py`), on one server in one run, each sending the same number
//! of messages.
//!
//! ```text
//! cargo bench --bench zaqar                                     # full run, Markdown table
//! cargo bench --bench zaqar -- --count 300 --only ours,raw --rows notify-1,e2e
//! cargo bench --bench zaqar -- --no-python --concurrency 32
//! cargo bench --bench zaqar -- --rows calls-1 --poll-interval 0.005
//! ```
//!
//! Rows (keys for `--rows`), each `--count` (N, 1000) timed messages after `--warmup`
//! (10) untimed ones sent one at a time:
//!
//! - `notify-1`: notifications one at a time, each post awaited.
//! - `notify-n`: notifications from `--concurrency` (16) concurrent senders: our tasks on
//!   one notifier, raw tasks, Python threads (a zaqarclient each).
//! - `e2e`: notifier → listener: `--e2e-senders` (16) concurrent senders post N
//!   notifications while one listener claims (`--claim-limit` 20 a claim) and deletes
//!   them; the rate is N over the time from the first send until the last was
//!   handled, the latency from the start of a send to the handler (the payload carries
//!   the send time). Ours is a `NotificationListener`; raw and Python run a claimer
//!   loop (claim, then delete each message with its claim id) paced as the driver
//!   polls: `--poll-interval` (0.01 s, the driver's default) after a claim that found messages, doubling up to
//!   `--idle-poll-interval` (0.25 s) while the queue stays empty.
//! - `calls-1`, `calls-n`: RPC calls of `echo`, one at a time and from `--concurrency`
//!   callers, ours only (`RpcClient` and `RpcServer` on two transports): oslo.messaging
//!   has no Zaqar driver, and raw HTTP has no RPC protocol of its own.
//!
//! Implementations:
//!
//! - **ours**: the messaging facade on `zaqar://<host:port>/<project>` with the poll
//!   intervals and claim limit above as query parameters (`--ours-query` adds more).
//! - **raw HTTP**: Zaqar's v2 API by hand over tokio's TCP, one connection per request
//!   (the test server speaks HTTP/1.0 and closes each), with the driver's headers
//!   (`Client-ID`, `X-Project-ID`) and the same body: oslo's `messagingv2` envelope of a
//!   `bench.event` notification of priority INFO from `bench.host`, TTL 3600 s.
//! - **python-zaqarclient** (`.venv-zaqar`, which `scripts/services zaqar` builds, or
//!   `ZAQAR_PEER_PYTHON`): `queue.post` of the same envelope, claims and deletes; all
//!   its rows in one child process after ours and raw; see `tests/peers/bench_zaqar.py`.
//!
//! Notifications to topic `T` with priority info go to the queue `T__info`; topics are
//! `bz-<run>-<implementation>-<row>-<payload>` (no character the driver escapes). Every
//! row deletes its queues at the end, and the run deletes what is left of its own (RPC
//! registrations) when done. The server is `ZAQAR_URL` (default
//! `zaqar://127.0.0.1:8888/`); the project is its path, else `bench`. `scripts/services
//! zaqar` starts it (on Redis, without Keystone).
//!
//! Without `--bench` (as `cargo test --bench zaqar` runs it) every row sends 5 messages
//! after 1 warm-up message, as a smoke test that asserts nothing about speed. Rows count
//! messages: `--seconds` does not apply.

// The RabbitMQ helpers and the oslo peer of the shared module are the other benchmarks'.
#[allow(dead_code)]
mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use common::{CALL_TIMEOUT, Cell, Echo, Measured, OP_TIMEOUT, Plan, Profile, cells, err, side};

/// What differs from the other benchmarks in what they share.
static PROFILE: Profile = Profile {
    name: "zaqar",
    about: "Notification and RPC throughput and latency over Zaqar: ours, raw HTTP and \
            python-zaqarclient, each sending --count messages per row (--seconds does not \
            apply)",
    payloads: &[100],
    seconds: 5.0,
    // Zaqar serves a few hundred requests a second.
    drain_timeout: Duration::from_secs(120),
    setup_timeout: Duration::from_secs(30),
    counted: "notifications",
};
/// The default Zaqar server.
const DEFAULT_ZAQAR_URL: &str = "zaqar://127.0.0.1:8888/";
/// The project when `ZAQAR_URL` has no path.
const DEFAULT_PROJECT: &str = "bench";
/// The driver's `message_ttl`, claim TTL and grace defaults, for raw HTTP.
const MESSAGE_TTL: u32 = 3600;
const CLAIM_TTL: u32 = 300;
const CLAIM_GRACE: u32 = 60;

// ---------------------------------------------------------------------------------
// Scenarios and options.
// ---------------------------------------------------------------------------------

/// One line of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    /// Notifications one at a time.
    NotifyOne,
    /// Notifications from many concurrent senders.
    NotifyMany,
    /// Notifier → listener.
    EndToEnd,
    /// RPC calls one at a time.
    CallsOne,
    /// RPC calls from many callers.
    CallsMany,
}

impl Row {
    const ALL: [Row; 5] = [
        Row::NotifyOne,
        Row::NotifyMany,
        Row::EndToEnd,
        Row::CallsOne,
        Row::CallsMany,
    ];

    fn key(self) -> &'static str {
        match self {
            Row::NotifyOne => "notify-1",
            Row::NotifyMany => "notify-n",
            Row::EndToEnd => "e2e",
            Row::CallsOne => "calls-1",
            Row::CallsMany => "calls-n",
        }
    }

    fn label(self, b: &Bench) -> String {
        match self {
            Row::NotifyOne => "notifications, 1 sender, each post awaited".to_string(),
            Row::NotifyMany => format!(
                "notifications, {} concurrent senders, each post awaited",
                b.concurrency
            ),
            Row::EndToEnd => format!(
                "notifier → listener end to end: {} senders, 1 listener (claims of {}); handled/s, send → handler latency",
                b.e2e_senders, b.claim_limit
            ),
            Row::CallsOne => "RPC calls, 1 caller".to_string(),
            Row::CallsMany => format!("RPC calls, {} concurrent callers", b.concurrency),
        }
    }

    fn is_rpc(self) -> bool {
        matches!(self, Row::CallsOne | Row::CallsMany)
    }
}

/// The Zaqar benchmark's own options.
#[derive(Debug, Clone, clap::Args)]
struct Extra {
    /// Timed messages (notifications, calls) per row and implementation [default: 1000;
    /// 5 in a smoke pass].
    #[arg(long, value_parser = common::at_least(1u64))]
    count: Option<u64>,
    /// Untimed messages sent one at a time before each row's timed ones [default: 10;
    /// 1 in a smoke pass].
    #[arg(long)]
    warmup: Option<u64>,
    /// Concurrent senders of `notify-n` and callers of `calls-n`.
    #[arg(long, default_value_t = 16, value_parser = common::at_least(1usize))]
    concurrency: usize,
    /// Concurrent senders of `e2e`.
    #[arg(long, default_value_t = 16, value_parser = common::at_least(1usize))]
    e2e_senders: usize,
    /// Messages a listener claims at most in one request (1 to 20).
    #[arg(long, default_value_t = 20, value_parser = claim_limit)]
    claim_limit: usize,
    /// Seconds between polls of a queue that had messages (every implementation).
    #[arg(long, default_value_t = 0.01)]
    poll_interval: f64,
    /// Longest seconds between polls of an empty queue (every implementation).
    #[arg(long, default_value_t = 0.25)]
    idle_poll_interval: f64,
    /// Extra query parameters of our Zaqar URL (`--ours-query a=1&b=2`), to try driver
    /// options.
    #[arg(long, value_name = "QUERY", default_value = "")]
    ours_query: String,
}

fn claim_limit(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(err)?;
    if !(1..=20).contains(&n) {
        return Err("must be 1 to 20".into());
    }
    Ok(n)
}

/// Command-line options: those every benchmark has, and ours.
type Options = common::Options<Extra>;

fn parse_options() -> Options {
    let keys: Vec<&str> = Row::ALL.iter().map(|r| r.key()).collect();
    Options::parse(&PROFILE, &keys, |_, _| {})
}

/// The server, and what every row of one payload size shares.
#[derive(Debug, Clone)]
struct Bench {
    /// `host:port` of the server.
    addr: String,
    /// `X-Project-ID`.
    project: String,
    plan: Plan,
    payload: Arc<str>,
    count: u64,
    warmup: u64,
    concurrency: usize,
    e2e_senders: usize,
    claim_limit: usize,
    poll_interval: f64,
    idle_poll_interval: f64,
    /// Makes topic names unique to this run.
    run_id: String,
    ours_query: String,
}

impl Bench {
    /// A topic unique to this run, implementation and row: `[A-Za-z0-9-]` only, so that
    /// its notification queue is `<topic>__info`.
    fn topic(&self, implementation: &str, row: Row) -> String {
        format!(
            "bz-{}-{implementation}-{}-{}",
            self.run_id,
            row.key(),
            self.payload.len()
        )
    }

    /// Our transport URL.
    fn ours_url(&self) -> String {
        let mut url = format!(
            "zaqar://{}/{}?poll_interval={}&idle_poll_interval={}&claim_limit={}",
            self.addr, self.project, self.poll_interval, self.idle_poll_interval, self.claim_limit
        );
        if !self.ours_query.is_empty() {
            url.push('&');
            url.push_str(&self.ours_query);
        }
        url
    }

    /// How long an empty queue is waited on after `empty_polls` empty polls in a row
    /// (the driver's pacing, for the claimer loop of raw HTTP).
    fn idle_wait(&self, empty_polls: u32) -> Duration {
        let wait = self.poll_interval * 2f64.powi(empty_polls.saturating_sub(1).min(30) as i32);
        Duration::from_secs_f64(wait.min(self.idle_poll_interval))
    }
}

/// (`host:port`, project) from `ZAQAR_URL`.
fn zaqar_url() -> Result<(String, String), String> {
    let url = std::env::var("ZAQAR_URL").unwrap_or_else(|_| DEFAULT_ZAQAR_URL.into());
    let rest = url
        .strip_prefix("zaqar://")
        .or_else(|| url.strip_prefix("zaqar+http://"))
        .ok_or_else(|| {
            format!("ZAQAR_URL {url:?} is not a zaqar:// URL (zaqar+https is not benchmarked)")
        })?;
    let rest = rest.split('?').next().unwrap_or_default();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.contains('@') {
        return Err("the benchmark takes a ZAQAR_URL without Keystone credentials".into());
    }
    let addr = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:8888")
    };
    let project = match path.trim_matches('/') {
        "" => DEFAULT_PROJECT.to_string(),
        p => p.to_string(),
    };
    Ok((addr, project))
}

/// The payload of every notification: data and its send time (ns since the Unix epoch,
/// the wall clock, so that another process can read it).
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

// ---------------------------------------------------------------------------------
// Measurement: N operations, arrivals.
// ---------------------------------------------------------------------------------

/// `warmup` operations one at a time, untimed, then `n` from `workers` concurrent tasks,
/// each timed; the rate is `n` over the time from the start to the last completion.
/// The first failure ends the row.
async fn count_ops<F, Fut>(n: u64, warmup: u64, workers: usize, op: F) -> Result<Measured, String>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let timed = |fut: Fut| async {
        tokio::time::timeout(OP_TIMEOUT, fut)
            .await
            .map_err(|_| format!("an operation took longer than {OP_TIMEOUT:?}"))?
    };
    for _ in 0..warmup {
        timed(op()).await?;
    }
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..(workers as u64).min(n) {
        let (op, next) = (op.clone(), next.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let t0 = Instant::now();
                tokio::time::timeout(OP_TIMEOUT, op())
                    .await
                    .map_err(|_| format!("an operation took longer than {OP_TIMEOUT:?}"))??;
                latencies.push(t0.elapsed());
            }
            Ok::<_, String>(latencies)
        });
    }
    let mut all = Vec::with_capacity(n as usize);
    while let Some(joined) = tasks.join_next().await {
        // Dropping the set stops the other senders.
        all.extend(joined.map_err(err).and_then(|r| r)?);
    }
    common::measured(all, start.elapsed())
}

/// What a listener saw: a count, and (send time, handling time) of each notification,
/// both in ns since the Unix epoch; and the failure that stopped a claimer loop.
#[derive(Default)]
struct Arrivals {
    received: AtomicU64,
    samples: Mutex<Vec<(u64, u64)>>,
    failure: Mutex<Option<String>>,
}

impl Arrivals {
    /// Records one handled notification sent at `sent_ns`.
    fn record(&self, sent_ns: u64) {
        let at = now_ns();
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((sent_ns, at));
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    fn fail(&self, e: String) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
    }

    /// Waits until `expected` notifications were handled.
    async fn wait_for(&self, plan: Plan, expected: u64) -> Result<(), String> {
        let within = plan.profile.drain_timeout;
        let deadline = Instant::now() + within;
        loop {
            let got = self.received.load(Ordering::Relaxed);
            if got >= expected {
                return Ok(());
            }
            if let Some(e) = self
                .failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
            {
                return Err(e);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the listener handled {got} of {expected} notifications within {within:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Rate and latency of the notifications sent from `start_ns` on: their count over
    /// the time from `start_ns` until the last of them was handled.
    fn since(&self, start_ns: u64) -> Result<Measured, String> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let mut latencies = Vec::new();
        let mut last = start_ns;
        for &(sent, at) in samples.iter().filter(|(s, _)| *s >= start_ns) {
            latencies.push(Duration::from_nanos(at.saturating_sub(sent)));
            last = last.max(at);
        }
        common::measured(latencies, Duration::from_nanos(last - start_ns))
    }
}

/// Notifier → listener: `warmup` notifications one at a time (until handled), then
/// `count` from `e2e_senders` tasks through `send` (given the send time), until the
/// listener recording into `arrivals` handled them all.
async fn end_to_end<F, Fut>(b: &Bench, arrivals: Arc<Arrivals>, send: F) -> Result<Measured, String>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let send = Arc::new(send);
    for _ in 0..b.warmup {
        send(now_ns()).await?;
    }
    arrivals.wait_for(b.plan, b.warmup).await?;
    let start_ns = now_ns();
    count_ops(b.count, 0, b.e2e_senders, move || send(now_ns())).await?;
    arrivals.wait_for(b.plan, b.warmup + b.count).await?;
    arrivals.since(start_ns)
}

// ---------------------------------------------------------------------------------
// Ours: the messaging facade on the zaqar driver.
// ---------------------------------------------------------------------------------

mod ours {
    use super::*;
    use messaging::notify::{Notification, Notifier, Priority};
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

    /// Notifications from `workers` tasks on one notifier, each post awaited.
    pub async fn send(b: &Bench, row: Row, workers: usize) -> Result<Measured, String> {
        let topic = b.topic("ours", row);
        let t = transport(&b.ours_url()).await?;
        let state = Arc::new((notifier(&t, &topic), b.payload.clone()));
        let result = count_ops(b.count, b.warmup, workers, move || {
            let state = state.clone();
            async move {
                let (notifier, payload) = &*state;
                let stamped = Stamped {
                    data: payload,
                    t: now_ns(),
                };
                common::notify(notifier, stamped).await
            }
        })
        .await;
        t.cleanup().await;
        raw::delete_queues(b, &[format!("{topic}__info")]).await;
        result
    }

    /// Notifier → `NotificationListener`.
    pub async fn end_to_end(b: &Bench) -> Result<Measured, String> {
        let topic = b.topic("ours", Row::EndToEnd);
        let listener_t = transport(&b.ours_url()).await?;
        let notifier_t = transport(&b.ours_url()).await?;
        let arrivals = Arc::new(Arrivals::default());
        let recorder = arrivals.clone();
        let listener =
            messaging::notify::NotificationListener::new(&listener_t, [Target::topic(&topic)])
                .on(Priority::Info, move |n: Notification| {
                    recorder.record(n.payload["t"].as_u64().unwrap_or(0));
                    async {}
                })
                .start()
                .await
                .map_err(err);
        let result = match listener {
            Ok(listener) => {
                let state = Arc::new((notifier(&notifier_t, &topic), b.payload.clone()));
                let result = super::end_to_end(b, arrivals, move |t| {
                    let state = state.clone();
                    async move {
                        let (notifier, payload) = &*state;
                        common::notify(notifier, Stamped { data: payload, t }).await
                    }
                })
                .await;
                listener.stop().await;
                let _ = listener.wait().await;
                result
            }
            Err(e) => Err(e),
        };
        notifier_t.cleanup().await;
        listener_t.cleanup().await;
        raw::delete_queues(b, &[format!("{topic}__info")]).await;
        result
    }

    /// Calls `echo` on an `RpcServer` from `workers` callers.
    pub async fn calls(b: &Bench, row: Row, workers: usize) -> Result<Measured, String> {
        let topic = b.topic("ours", row);
        let server_t = transport(&b.ours_url()).await?;
        let client_t = transport(&b.ours_url()).await?;
        let api = Endpoint::new().method("echo", |_ctx: Context, Echo { data }| async move {
            Ok::<_, RemoteError>(data)
        });
        let server = RpcServer::new(&server_t, Target::topic(&topic).server("bench"))
            .endpoint(api)
            .max_concurrency(workers)
            .start()
            .await
            .map_err(err)?;
        let client = RpcClient::new(&client_t, Target::topic(&topic)).timeout(CALL_TIMEOUT);
        let state = Arc::new((client, b.payload.clone()));
        let result = count_ops(b.count, b.warmup, workers, move || {
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
// Raw HTTP: Zaqar's v2 API by hand over tokio's TCP.
// ---------------------------------------------------------------------------------

mod raw {
    use super::*;
    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A client of one `Client-ID`: a connection per request, as the server closes
    /// each (HTTP/1.0).
    pub struct Http {
        addr: String,
        project: String,
        client_id: String,
    }

    /// A claimed message: its id, the claim's id and its body.
    struct Claimed {
        id: String,
        claim: String,
        body: Value,
    }

    impl Http {
        pub fn new(b: &Bench) -> Http {
            Http {
                addr: b.addr.clone(),
                project: b.project.clone(),
                client_id: uuid::Uuid::new_v4().to_string(),
            }
        }

        /// One request; the status and body of a 2xx answer.
        async fn request(
            &self,
            method: &str,
            path: &str,
            body: Option<&str>,
        ) -> Result<(u16, Vec<u8>), String> {
            let body = body.unwrap_or_default();
            let request = format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nClient-ID: {}\r\nX-Project-ID: {}\r\n\
                 Accept: application/json\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                self.addr,
                self.client_id,
                self.project,
                body.len()
            );
            let mut stream = tokio::net::TcpStream::connect(&self.addr)
                .await
                .map_err(|e| format!("connecting to {}: {e}", self.addr))?;
            let _ = stream.set_nodelay(true);
            stream.write_all(request.as_bytes()).await.map_err(err)?;
            let mut answer = Vec::with_capacity(1024);
            stream.read_to_end(&mut answer).await.map_err(err)?;
            let split = answer
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .ok_or_else(|| format!("{method} {path}: an answer without a header end"))?;
            let head = String::from_utf8_lossy(&answer[..split]);
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("{method} {path}: no status in {head:?}"))?;
            let body = answer[split + 4..].to_vec();
            if !(200..300).contains(&status) {
                return Err(format!(
                    "{method} {path}: HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
            Ok((status, body))
        }

        pub async fn ping(&self) -> Result<(), String> {
            self.request("GET", "/v2/ping", None).await.map(drop)
        }

        /// Posts one message with `body` (JSON text) to `queue`.
        pub async fn post(&self, queue: &str, body: &str) -> Result<(), String> {
            let text = format!("{{\"messages\":[{{\"ttl\":{MESSAGE_TTL},\"body\":{body}}}]}}");
            let path = format!("/v2/queues/{queue}/messages");
            self.request("POST", &path, Some(&text)).await.map(drop)
        }

        /// Claims up to `limit` messages of `queue`.
        async fn claim(&self, queue: &str, limit: usize) -> Result<Vec<Claimed>, String> {
            let path = format!("/v2/queues/{queue}/claims?limit={limit}");
            let body = format!("{{\"ttl\":{CLAIM_TTL},\"grace\":{CLAIM_GRACE}}}");
            let (status, answer) = self.request("POST", &path, Some(&body)).await?;
            if status == 204 || answer.is_empty() {
                return Ok(Vec::new());
            }
            let answer: Value = serde_json::from_slice(&answer).map_err(err)?;
            let messages = answer["messages"].as_array().cloned().unwrap_or_default();
            messages
                .into_iter()
                .map(|mut m| {
                    // `href` is `/v2/queues/<q>/messages/<id>?claim_id=<claim>`.
                    let href = m["href"].as_str().unwrap_or_default();
                    let claim = href
                        .split_once("claim_id=")
                        .map(|x| x.1.to_string())
                        .ok_or_else(|| format!("a claimed message without a claim: {href}"))?;
                    let id = match m["id"].as_str() {
                        Some(id) => id.to_string(),
                        None => href
                            .split('?')
                            .next()
                            .and_then(|p| p.rsplit('/').next())
                            .unwrap_or_default()
                            .to_string(),
                    };
                    Ok(Claimed {
                        id,
                        claim,
                        body: m["body"].take(),
                    })
                })
                .collect()
        }

        /// Deletes a claimed message.
        async fn delete(&self, queue: &str, id: &str, claim: &str) -> Result<(), String> {
            let path = format!("/v2/queues/{queue}/messages/{id}?claim_id={claim}");
            self.request("DELETE", &path, None).await.map(drop)
        }

        async fn delete_queue(&self, queue: &str) -> Result<(), String> {
            self.request("DELETE", &format!("/v2/queues/{queue}"), None)
                .await
                .map(drop)
        }

        /// The names of the project's queues.
        async fn queues(&self) -> Result<Vec<String>, String> {
            let mut names = Vec::new();
            let mut marker: Option<String> = None;
            loop {
                let mut path = "/v2/queues?limit=20".to_string();
                if let Some(m) = &marker {
                    path.push_str("&marker=");
                    path.push_str(m);
                }
                let (status, answer) = self.request("GET", &path, None).await?;
                if status == 204 || answer.is_empty() {
                    return Ok(names);
                }
                let page: Value = serde_json::from_slice(&answer).map_err(err)?;
                let page_names: Vec<String> = page["queues"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|q| q["name"].as_str().map(String::from))
                    .collect();
                if page_names.is_empty() {
                    return Ok(names);
                }
                marker = page_names.last().cloned();
                names.extend(page_names);
            }
        }
    }

    /// oslo's `messagingv2` envelope of a `bench.event` notification of priority INFO
    /// with `payload`, as the driver posts it (the context flattened, empty here; the
    /// driver adds `_unique_id`).
    pub fn notification(payload: &str, t: u64) -> String {
        let inner = json!({
            "message_id": uuid::Uuid::new_v4().to_string(),
            "publisher_id": "bench.host",
            "event_type": "bench.event",
            "priority": "INFO",
            "payload": {"data": payload, "t": t},
            "timestamp": chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
            "_unique_id": uuid::Uuid::new_v4().simple().to_string(),
        });
        json!({"oslo.version": "2.0", "oslo.message": inner.to_string()}).to_string()
    }

    /// The send time of a notification body.
    fn sent_at(body: &Value) -> Option<u64> {
        let inner: Value = serde_json::from_str(body.get("oslo.message")?.as_str()?).ok()?;
        inner["payload"]["t"].as_u64()
    }

    /// Notifications from `workers` tasks, each post awaited.
    pub async fn send(b: &Bench, row: Row, workers: usize) -> Result<Measured, String> {
        let queue = format!("{}__info", b.topic("raw", row));
        let state = Arc::new((Http::new(b), queue.clone(), b.payload.clone()));
        let result = count_ops(b.count, b.warmup, workers, move || {
            let state = state.clone();
            async move {
                let (http, queue, payload) = &*state;
                http.post(queue, &notification(payload, now_ns())).await
            }
        })
        .await;
        delete_queues(b, &[queue]).await;
        result
    }

    /// The claimer loop: claims of `claim_limit`, each message handled then deleted
    /// with its claim id, paced as the driver polls, until `stop`.
    async fn claimer(b: Bench, queue: String, arrivals: Arc<Arrivals>, stop: Arc<AtomicBool>) {
        let http = Http::new(&b);
        let mut empty_polls = 0u32;
        while !stop.load(Ordering::Relaxed) {
            let claimed = match http.claim(&queue, b.claim_limit).await {
                Ok(claimed) => claimed,
                Err(e) => return arrivals.fail(format!("claimer: {e}")),
            };
            let wait = if claimed.is_empty() {
                empty_polls += 1;
                b.idle_wait(empty_polls)
            } else {
                empty_polls = 0;
                Duration::from_secs_f64(b.poll_interval)
            };
            for m in claimed {
                arrivals.record(sent_at(&m.body).unwrap_or(0));
                if let Err(e) = http.delete(&queue, &m.id, &m.claim).await {
                    return arrivals.fail(format!("claimer: {e}"));
                }
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Posts → the claimer loop.
    pub async fn end_to_end(b: &Bench) -> Result<Measured, String> {
        let queue = format!("{}__info", b.topic("raw", Row::EndToEnd));
        let arrivals = Arc::new(Arrivals::default());
        let stop = Arc::new(AtomicBool::new(false));
        let claiming = tokio::spawn(claimer(
            b.clone(),
            queue.clone(),
            arrivals.clone(),
            stop.clone(),
        ));
        let state = Arc::new((Http::new(b), queue.clone(), b.payload.clone()));
        let result = super::end_to_end(b, arrivals, move |t| {
            let state = state.clone();
            async move {
                let (http, queue, payload) = &*state;
                http.post(queue, &notification(payload, t)).await
            }
        })
        .await;
        stop.store(true, Ordering::Relaxed);
        let _ = tokio::time::timeout(Duration::from_secs(10), claiming).await;
        delete_queues(b, &[queue]).await;
        result
    }

    /// Deletes `queues`, best effort.
    pub async fn delete_queues(b: &Bench, queues: &[String]) {
        let http = Http::new(b);
        for q in queues {
            let _ = tokio::time::timeout(PROFILE.setup_timeout, http.delete_queue(q)).await;
        }
    }

    /// Deletes the project's queues whose names hold `run_id`, best effort: what the
    /// driver leaves behind (RPC registrations and server queues).
    pub async fn delete_run_queues(b: &Bench) {
        let http = Http::new(b);
        let work = async {
            let Ok(names) = http.queues().await else {
                return;
            };
            for q in names.iter().filter(|q| q.contains(&b.run_id)) {
                let _ = http.delete_queue(q).await;
            }
        };
        let _ = tokio::time::timeout(PROFILE.setup_timeout, work).await;
    }

    /// Whether the server answers a ping.
    pub async fn reachable(b: &Bench) -> Result<(), String> {
        tokio::time::timeout(Duration::from_secs(10), Http::new(b).ping())
            .await
            .map_err(|_| "no answer within 10 s".to_string())?
    }
}

// ---------------------------------------------------------------------------------
// python-zaqarclient: tests/peers/bench_zaqar.py.
// ---------------------------------------------------------------------------------

mod python {
    use super::*;
    use serde_json::Value;

    /// The interpreter: `ZAQAR_PEER_PYTHON`, else the virtualenv `scripts/services
    /// zaqar` makes; `None` if it does not exist.
    pub fn interpreter() -> Option<PathBuf> {
        let py = std::env::var_os("ZAQAR_PEER_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-zaqar/bin/python")
            });
        py.exists().then_some(py)
    }

    /// The zaqar server's version, as installed beside the client.
    pub fn zaqar_version() -> Option<String> {
        let out = std::process::Command::new(interpreter()?)
            .args([
                "-c",
                "from importlib.metadata import version; print(version('zaqar'))",
            ])
            .output()
            .ok()?;
        let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !v.is_empty()).then_some(v)
    }

    /// What the peer reports: the client's version and each row by key.
    pub struct Report {
        pub version: String,
        pub rows: HashMap<String, Result<Measured, String>>,
    }

    /// Runs the peer's `rows`, bounded, and reads its report.
    pub async fn run(b: &Bench, rows: &[Row]) -> Result<Report, String> {
        let py = interpreter().ok_or("no .venv-zaqar: run scripts/services zaqar")?;
        let keys: Vec<&str> = rows.iter().map(|r| r.key()).collect();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/bench_zaqar.py");
        let mut cmd = tokio::process::Command::new(py);
        cmd.arg(script)
            .args(["--endpoint", &format!("http://{}", b.addr)])
            .args(["--project", &b.project])
            .args(["--payload", &b.payload.len().to_string()])
            .args(["--count", &b.count.to_string()])
            .args(["--warmup", &b.warmup.to_string()])
            .args([
                "--topic",
                &format!("bz-{}-python-{}", b.run_id, b.payload.len()),
            ])
            .args(["--rows", &keys.join(",")])
            .args(["--concurrency", &b.concurrency.to_string()])
            .args(["--e2e-senders", &b.e2e_senders.to_string()])
            .args(["--claim-limit", &b.claim_limit.to_string()])
            .args(["--poll-interval", &b.poll_interval.to_string()])
            .args(["--idle-poll-interval", &b.idle_poll_interval.to_string()])
            .kill_on_drop(true);
        let limit = (b.plan.profile.drain_timeout + OP_TIMEOUT) * keys.len().max(1) as u32
            + b.plan.profile.setup_timeout;
        let out = tokio::time::timeout(limit, cmd.output())
            .await
            .map_err(|_| format!("bench_zaqar.py did not finish within {limit:?}"))?
            .map_err(err)?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            return Err(format!(
                "bench_zaqar.py failed ({}): {}",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            ));
        }
        let mut report = Report {
            version: "?".into(),
            rows: HashMap::new(),
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        for line in stdout.lines().filter(|l| l.starts_with('{')) {
            let v: Value = serde_json::from_str(line).map_err(err)?;
            if let Some(version) = v["zaqarclient"].as_str() {
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
                    note: None,
                }),
            };
            report.rows.insert(key.to_string(), measured);
        }
        Ok(report)
    }
}

// ---------------------------------------------------------------------------------
// Report: the machine and one Markdown table per payload size.
// ---------------------------------------------------------------------------------

/// One line of a table: a scenario and what each implementation measured; `None` in
/// `raw`, `python`: the implementation has no such row (n/a).
struct Line {
    row: Row,
    ours: Cell,
    raw: Option<Cell>,
    python: Option<Cell>,
}

fn table(b: &Bench, lines: &[Line], python_version: Option<&str>) -> String {
    let py = python_version.map_or("python-zaqarclient".to_string(), |v| {
        format!("python-zaqarclient {v}")
    });
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\n#### {}-byte payload, N = {}\n",
        b.payload.len(),
        b.count
    );
    let _ = writeln!(
        t,
        "| scenario | ours msg/s | ours p50 / p99 ms | raw HTTP msg/s | raw p50 / p99 ms | ours / raw | {py} msg/s | {py} p50 / p99 ms | ours / {py} |"
    );
    let _ = writeln!(t, "|---{}|", "|--:".repeat(8));
    let na = || ("n/a".to_string(), "n/a".to_string());
    for line in lines {
        let ours = common::throughput(&line.ours);
        let other = |cell: &Option<Cell>| match cell {
            Some(c) => (cells(c), common::ratio(ours, c, None, "")),
            None => (na(), "n/a".to_string()),
        };
        let (raw, vs_raw) = other(&line.raw);
        let (python, vs_python) = other(&line.python);
        let o = cells(&line.ours);
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {vs_raw} | {} | {} | {vs_python} |",
            line.row.label(b),
            o.0,
            o.1,
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

/// Runs one row for ours and raw (Python runs later, all its rows in one process).
async fn run_row(b: &Bench, o: &Options, row: Row) -> Line {
    let progress = |who: &'static str| {
        move || PROFILE.say(format!("{} B, {}, {who}", b.payload.len(), row.key()))
    };
    let only = o.only;
    // Not run (yet): `–`; filled from the Python peer's report later.
    let python = (!row.is_rpc()).then_some(None);
    match row {
        Row::NotifyOne | Row::NotifyMany => {
            let workers = if row == Row::NotifyOne {
                1
            } else {
                b.concurrency
            };
            let ours = side(
                only.ours,
                b.plan,
                progress("ours"),
                ours::send(b, row, workers),
            )
            .await;
            let raw = raw::send(b, row, workers);
            let raw = side(only.raw, b.plan, progress("raw HTTP"), raw).await;
            Line {
                row,
                ours,
                raw: Some(raw),
                python,
            }
        }
        Row::EndToEnd => {
            let ours = side(only.ours, b.plan, progress("ours"), ours::end_to_end(b)).await;
            let raw = side(only.raw, b.plan, progress("raw HTTP"), raw::end_to_end(b)).await;
            Line {
                row,
                ours,
                raw: Some(raw),
                python,
            }
        }
        Row::CallsOne | Row::CallsMany => {
            let workers = if row == Row::CallsOne {
                1
            } else {
                b.concurrency
            };
            let ours = side(
                only.ours,
                b.plan,
                progress("ours"),
                ours::calls(b, row, workers),
            )
            .await;
            Line {
                row,
                ours,
                raw: None,
                python: None,
            }
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    common::main(&PROFILE, run()).await
}

/// Every row, then the table; whether a row failed.
async fn run() -> Result<bool, String> {
    let options = parse_options();
    let (addr, project) = zaqar_url()?;
    if options.only.python && python::interpreter().is_none() {
        return Err(
            "no Python with python-zaqarclient (.venv-zaqar or ZAQAR_PEER_PYTHON): run \
             scripts/services zaqar, or pass --no-python"
                .into(),
        );
    }
    let x = &options.extra;
    let count = x.count.unwrap_or(if options.full { 1000 } else { 5 });
    let warmup = x.warmup.unwrap_or(if options.full { 10 } else { 1 });
    let run_id = common::run_id();
    let mut out = String::new();
    let started = Instant::now();
    if options.full {
        let zaqar = python::zaqar_version().map_or("Zaqar".to_string(), |v| format!("Zaqar {v}"));
        let _ = writeln!(
            out,
            "Zaqar benchmark on {}",
            common::machine(&format!("{zaqar} at {addr} (Redis, no Keystone)"))
        );
        let _ = writeln!(
            out,
            "N = {count} timed messages per row and implementation, after {warmup} untimed ones. \
             Sending rows: latency per post, awaited. End to end: N over the time from the first \
             send to the last handled; latency from the start of the send to the handler; ours \
             is a NotificationListener, raw and Python a claimer loop (claim {}, delete each); \
             all poll every {} s while busy, backing off to {} s. RPC: ours only \
             (oslo.messaging has no Zaqar driver).",
            x.claim_limit, x.poll_interval, x.idle_poll_interval
        );
    } else {
        let _ = writeln!(
            out,
            "Smoke pass (no --bench): a few messages per row; the numbers mean nothing."
        );
    }
    let mut failed = false;
    for (i, &size) in options.payloads.iter().enumerate() {
        let b = Bench {
            addr: addr.clone(),
            project: project.clone(),
            plan: options.plan(),
            payload: common::payload(size),
            count,
            warmup,
            concurrency: x.concurrency,
            e2e_senders: x.e2e_senders,
            claim_limit: x.claim_limit,
            poll_interval: x.poll_interval,
            idle_poll_interval: x.idle_poll_interval,
            run_id: run_id.clone(),
            ours_query: x.ours_query.clone(),
        };
        raw::reachable(&b).await.map_err(|e| {
            format!("no Zaqar server answers at {addr} ({e}); start it with scripts/services zaqar")
        })?;
        let rows: Vec<Row> = Row::ALL
            .into_iter()
            .filter(|r| options.wants(r.key()))
            .collect();
        let mut lines = Vec::new();
        for &row in &rows {
            lines.push(run_row(&b, &options, row).await);
        }
        let python_rows: Vec<Row> = rows.iter().copied().filter(|r| !r.is_rpc()).collect();
        let mut version = None;
        if options.python_at(i) && !python_rows.is_empty() {
            PROFILE.say(format!("{size} B, python-zaqarclient"));
            match python::run(&b, &python_rows).await {
                Ok(mut report) => {
                    for line in lines.iter_mut().filter(|l| l.python.is_some()) {
                        line.python = Some(Some(
                            report
                                .rows
                                .remove(line.row.key())
                                .unwrap_or_else(|| Err("no result".into())),
                        ));
                    }
                    version = Some(report.version);
                }
                Err(e) => {
                    for line in lines.iter_mut().filter(|l| l.python.is_some()) {
                        line.python = Some(Some(Err(e.clone())));
                    }
                }
            }
        }
        raw::delete_run_queues(&b).await;
        for line in &lines {
            let none: Cell = None;
            let cells = [
                ("ours", &line.ours),
                ("raw", line.raw.as_ref().unwrap_or(&none)),
                ("python", line.python.as_ref().unwrap_or(&none)),
            ];
            failed |= common::failures(b.plan, size, line.row.key(), cells, |_| false);
        }
        out.push_str(&table(&b, &lines, version.as_deref()));
    }
    PROFILE.say(format!("done in {:.0} s", started.elapsed().as_secs_f64()));
    println!("{out}");
    Ok(failed)
}
