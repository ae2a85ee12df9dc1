//! RPC throughput and latency over the brokerless ZeroMQ driver: this project, raw
//! zeromq DEALER/ROUTER ping-pong with the same frames, and this project's RabbitMQ
//! driver doing the same calls and casts, in one run.
//!
//! ```text
//! cargo bench --bench zmq                                       # full run, Markdown table
//! cargo bench --bench zmq -- --seconds 5 --payload 100,3072
//! cargo bench --bench zmq -- --only ours,raw --no-rabbit --rows calls-1,calls-1-ct
//! ZMQ_URL='zmq+redis://127.0.0.1:6379/?rpc_zmq_host=127.0.0.1&rpc_zmq_bind_address=127.0.0.1' cargo bench --bench zmq
//! ```
//!
//! Rows (keys for `--rows`), each run on a tokio runtime of its own, built for the
//! row: server, client and raw sockets all live on it, and it is shut down after.
//!
//! - `calls-1`: calls of `echo` one at a time on a multi-thread runtime (one worker
//!   per CPU). Compared by p50 latency: ours ≤ 2× raw.
//! - `calls-1-ct`: the same on a current-thread runtime.
//! - `calls-64`: calls from 64 concurrent callers (multi-thread). Compared by calls/s:
//!   ours ≥ 0.3× raw.
//! - `casts-1`, `casts-64`: casts of `echo` from 1 and 64 concurrent casters
//!   (multi-thread), as fast as they go, until the server has handled every one.
//!   Rate: casts handled from the start of the window until the server had them all;
//!   latency: how long `cast` took to return. Compared by rate: ours ≥ 0.5× raw.
//!
//! Implementations:
//!
//! - **ours**: `RpcServer` and `RpcClient` on two transports of `ZMQ_URL` (default
//!   `zmq+dummy://?rpc_zmq_host=127.0.0.1&rpc_zmq_bind_address=127.0.0.1`, the
//!   in-process matchmaker): two nodes in this process talking over TCP loopback.
//! - **raw zeromq**: a ROUTER bound on 127.0.0.1 and a DEALER connected to it, playing
//!   ping-pong by hand with the driver's five frames and the bodies ours sends (the
//!   oslo envelope of the same request and reply, encoded once beforehand): the server
//!   echoes a prepared reply to each call and counts casts, nothing is parsed. One
//!   caller sends and then receives on its DEALER; 64 callers share one DEALER (its
//!   send half behind a lock) with up to 64 requests outstanding, and a reader task
//!   hands replies back by id; casters share one DEALER.
//! - **RabbitMQ driver**: ours over `RABBIT_URL` (default
//!   `rabbit://guest:guest@127.0.0.1:5672/`), same server and client; its queues are
//!   deleted after each row. `--no-rabbit` leaves it out.
//! - Python oslo.messaging has no ZeroMQ driver any more (removed in 2018).
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) every row runs a handful of
//! messages as a smoke test that asserts nothing about speed; it needs RabbitMQ unless
//! given `--no-rabbit` (`scripts/services` starts it).

// The Python peer, the shared table and notifications are the other benchmarks'.
#[allow(dead_code)]
mod common;

use std::fmt::Write as _;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{CALL_TIMEOUT, Cell, Data, Echo, Measured, Plan, Profile, drain, drive, err};

/// What differs from the other benchmarks in what they share.
static PROFILE: Profile = Profile {
    name: "zmq",
    about: "RPC throughput and latency over ZeroMQ: ours, raw zeromq DEALER/ROUTER and ours \
            over RabbitMQ",
    payloads: &[100],
    seconds: 3.0,
    drain_timeout: Duration::from_secs(60),
    setup_timeout: Duration::from_secs(30),
    counted: "casts",
};
/// Two nodes on loopback, found through the in-process matchmaker.
const DEFAULT_ZMQ_URL: &str = "zmq+dummy://?rpc_zmq_host=127.0.0.1&rpc_zmq_bind_address=127.0.0.1";
/// oslo's default `control_exchange`, in the destination frame of the raw messages.
const EXCHANGE: &str = "openstack";
/// The Python column of every row.
const NO_PYTHON: &str = "n/a (removed from oslo.messaging in 2018)";
/// Concurrent callers or casters of the rows that have many.
const MANY: usize = 64;

// ---------------------------------------------------------------------------------
// Scenarios and options.
// ---------------------------------------------------------------------------------

/// Which tokio runtime a row runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    MultiThread,
    CurrentThread,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Call,
    Cast,
}

/// One line of the table.
#[derive(Debug, Clone, Copy)]
struct Row {
    kind: Kind,
    workers: usize,
    flavour: Flavour,
}

/// How ours is held against raw zeromq.
#[derive(Debug, Clone, Copy)]
enum Goal {
    /// ours p50 / raw p50 at most this.
    LatencyAtMost(f64),
    /// ours / raw throughput at least this.
    RateAtLeast(f64),
}

impl Row {
    const ALL: [Row; 5] = [
        Row::new(Kind::Call, 1, Flavour::MultiThread),
        Row::new(Kind::Call, 1, Flavour::CurrentThread),
        Row::new(Kind::Call, MANY, Flavour::MultiThread),
        Row::new(Kind::Cast, 1, Flavour::MultiThread),
        Row::new(Kind::Cast, MANY, Flavour::MultiThread),
    ];

    const fn new(kind: Kind, workers: usize, flavour: Flavour) -> Self {
        Row {
            kind,
            workers,
            flavour,
        }
    }

    fn key(&self) -> String {
        let kind = match self.kind {
            Kind::Call => "calls",
            Kind::Cast => "casts",
        };
        match self.flavour {
            Flavour::MultiThread => format!("{kind}-{}", self.workers),
            Flavour::CurrentThread => format!("{kind}-{}-ct", self.workers),
        }
    }

    fn label(&self) -> String {
        let who = match (self.kind, self.workers) {
            (Kind::Call, 1) => "calls, 1 caller".to_string(),
            (Kind::Call, n) => format!("calls, {n} concurrent callers"),
            (Kind::Cast, 1) => "casts, 1 caster".to_string(),
            (Kind::Cast, n) => format!("casts, {n} concurrent casters"),
        };
        let runtime = match self.flavour {
            Flavour::MultiThread => "multi-thread runtime",
            Flavour::CurrentThread => "current-thread runtime",
        };
        format!("{who}, {runtime}")
    }

    fn goal(&self) -> Goal {
        match (self.kind, self.workers) {
            (Kind::Call, 1) => Goal::LatencyAtMost(2.0),
            (Kind::Call, _) => Goal::RateAtLeast(0.3),
            (Kind::Cast, _) => Goal::RateAtLeast(0.5),
        }
    }
}

/// The ZeroMQ benchmark's own options.
#[derive(Debug, Clone, clap::Args)]
struct Extra {
    /// Our ZeroMQ URL [default: `ZMQ_URL`, else two nodes on loopback with the
    /// in-process matchmaker].
    #[arg(long, value_name = "URL", default_value = DEFAULT_ZMQ_URL, hide_default_value = true)]
    zmq_url: String,
    /// Leaves the RabbitMQ driver out.
    #[arg(long)]
    no_rabbit: bool,
}

type Options = common::Options<Extra>;

fn parse_options() -> Options {
    let keys: Vec<String> = Row::ALL.iter().map(Row::key).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    Options::parse(&PROFILE, &keys, |o, given| {
        if given.value_source("zmq_url") != Some(clap::parser::ValueSource::CommandLine)
            && let Ok(url) = std::env::var("ZMQ_URL")
        {
            o.extra.zmq_url = url;
        }
    })
}

/// What every row of one payload size shares.
#[derive(Debug, Clone)]
struct Bench {
    zmq_url: String,
    /// Our RabbitMQ URL, and lapin's form of it to delete the rows' queues.
    rabbit_url: String,
    amqp_url: String,
    plan: Plan,
    /// The JSON string argument of `echo`.
    payload: Arc<str>,
    /// Makes topic and queue names unique to this run.
    run_id: String,
}

impl Bench {
    /// A topic (and on RabbitMQ, queue) name unique to this run, implementation and row.
    fn topic(&self, implementation: &str, row: Row) -> String {
        common::topic(
            self.plan,
            &self.run_id,
            implementation,
            &row.key(),
            self.payload.len(),
        )
    }
}

// ---------------------------------------------------------------------------------
// Measurement: runtimes and the cast rate.
// ---------------------------------------------------------------------------------

fn runtime(flavour: Flavour) -> Result<tokio::runtime::Runtime, String> {
    match flavour {
        Flavour::MultiThread => tokio::runtime::Builder::new_multi_thread(),
        Flavour::CurrentThread => tokio::runtime::Builder::new_current_thread(),
    }
    .enable_all()
    .build()
    .map_err(err)
}

/// One implementation's side of a row: if `enabled`, says so and runs `row`, bounded,
/// on a new runtime of `flavour`, which is shut down after (with whatever the row left
/// running); else `None`.
fn side(
    enabled: bool,
    flavour: Flavour,
    plan: Plan,
    announce: impl FnOnce(),
    row: impl Future<Output = Result<Measured, String>>,
) -> Cell {
    if !enabled {
        return None;
    }
    announce();
    let rt = match runtime(flavour) {
        Ok(rt) => rt,
        Err(e) => return Some(Err(format!("cannot build the runtime: {e}"))),
    };
    let result = rt.block_on(common::bounded(plan, row));
    rt.shutdown_timeout(Duration::from_secs(2));
    Some(result)
}

/// Runs `cast` from `workers` concurrent tasks as [`drive`] does, then waits until the
/// server has counted (in `received`) every cast sent. The rate is the casts handled
/// from the start of the measured window until the server had them all, over that
/// time; latency is how long a cast took to return.
async fn cast_rate<F, Fut>(
    plan: Plan,
    workers: usize,
    received: Arc<AtomicU64>,
    cast: F,
) -> Result<Measured, String>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let before = received.load(Ordering::Relaxed);
    let window = Instant::now() + plan.warmup;
    // What the server had handled when the window opened (warm-up casts included);
    // without a warm-up, nothing.
    let at_window = tokio::spawn({
        let received = received.clone();
        async move {
            if window <= Instant::now() {
                return before;
            }
            tokio::time::sleep_until(window.into()).await;
            received.load(Ordering::Relaxed)
        }
    });
    let (sent, total) = drive(plan, workers, cast).await;
    let sent = sent?;
    drain(plan, &received, before + total).await?;
    let done = Instant::now();
    let at_window = at_window.await.map_err(err)?;
    let handled = (before + total).saturating_sub(at_window);
    let elapsed = done.saturating_duration_since(window);
    if handled == 0 || elapsed.is_zero() {
        return Err("no cast was handled in the measured window".into());
    }
    Ok(Measured {
        throughput: handled as f64 / elapsed.as_secs_f64(),
        ..sent
    })
}

// ---------------------------------------------------------------------------------
// Ours: the messaging facade, on the zmq driver (and for comparison the rabbit one).
// ---------------------------------------------------------------------------------

mod ours {
    use super::*;
    use messaging::{Config, Context, Endpoint, RemoteError, RpcClient, RpcServer, Target};

    /// Calls or casts `echo` on an `RpcServer` of one transport of `url` from an
    /// `RpcClient` of another, as two processes would.
    pub async fn rpc(
        url: &str,
        topic: &str,
        plan: Plan,
        row: Row,
        payload: Arc<str>,
    ) -> Result<Measured, String> {
        let registry = messaging::registry();
        let cfg = Config::default();
        let server_t = registry.transport(url, &cfg).await.map_err(err)?;
        let client_t = registry.transport(url, &cfg).await.map_err(err)?;
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        let api = Endpoint::new().method("echo", move |_ctx: Context, Echo { data }| {
            counter.fetch_add(1, Ordering::Relaxed);
            async move { Ok::<_, RemoteError>(data) }
        });
        let server = RpcServer::new(&server_t, Target::topic(topic).server("bench"))
            .endpoint(api)
            .start()
            .await
            .map_err(err)?;
        let client = RpcClient::new(&client_t, Target::topic(topic)).timeout(CALL_TIMEOUT);
        let state = Arc::new((client, payload));
        let result = match row.kind {
            Kind::Call => {
                drive(plan, row.workers, move || {
                    let state = state.clone();
                    async move {
                        let (client, payload) = &*state;
                        common::echo_call(client, payload).await
                    }
                })
                .await
                .0
            }
            Kind::Cast => {
                cast_rate(plan, row.workers, received, move || {
                    let state = state.clone();
                    async move {
                        let (client, payload) = &*state;
                        client
                            .cast(&Context::new(), "echo", Data { data: payload })
                            .await
                            .map_err(err)
                    }
                })
                .await
            }
        };
        common::finish_row(&server, &client_t, &server_t).await;
        result
    }
}

// ---------------------------------------------------------------------------------
// Raw zeromq: DEALER → ROUTER ping-pong with the driver's frames, by hand.
// ---------------------------------------------------------------------------------

mod raw {
    use super::*;
    use bytes::Bytes;
    use messaging::Context;
    use messaging_core::wire::{ContextPacking, Reply, ReplyAddress, Request};
    use serde_json::{Map, Value};
    use std::collections::HashMap;
    use std::sync::Mutex;
    use tokio::sync::oneshot;
    use zeromq::{DealerSocket, RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

    /// Frame 0 of the driver's messages.
    const VERSION: &[u8] = b"omsg-zmq/1";

    /// What the raw sides send: the bodies ours sends for the same call, reply and
    /// cast (the oslo 2.0 envelope, encoded once), and the destination frame.
    struct Bodies {
        request: Bytes,
        reply: Bytes,
        cast: Bytes,
        destination: Bytes,
    }

    fn bodies(topic: &str, payload: &str) -> Result<Bodies, String> {
        let mut args = Map::new();
        args.insert("data".into(), Value::String(payload.to_string()));
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut call = Request::new("echo", args.clone(), Context::new());
        call.reply = Some(ReplyAddress::new(id.clone(), "", None));
        let cast = Request::new("echo", args, Context::new());
        let reply = Reply::new(id, Ok(Value::String(payload.to_string())));
        Ok(Bodies {
            request: call.encode(ContextPacking::Flattened).map_err(err)?.into(),
            reply: reply.encode().map_err(err)?.into(),
            cast: cast.encode(ContextPacking::Flattened).map_err(err)?.into(),
            destination: format!("rpc/{EXCHANGE}/{topic}").into(),
        })
    }

    /// `[version, kind, id, destination, body]`.
    fn message(kind: &'static [u8], id: Bytes, destination: Bytes, body: Bytes) -> ZmqMessage {
        let mut m = ZmqMessage::from(Bytes::from_static(VERSION));
        m.push_back(Bytes::from_static(kind));
        m.push_back(id);
        m.push_back(destination);
        m.push_back(body);
        m
    }

    /// A call or cast id of the size of ours (32 hex digits).
    fn next_id(counter: &AtomicU64) -> Bytes {
        format!("{:032x}", counter.fetch_add(1, Ordering::Relaxed)).into()
    }

    /// A ROUTER on a free loopback port that answers every call with `reply` and
    /// counts every message in `received`; its address, and its task.
    async fn server(
        received: Arc<AtomicU64>,
        reply: Bytes,
    ) -> Result<(String, tokio::task::JoinHandle<Result<(), String>>), String> {
        let mut router = RouterSocket::new();
        let endpoint = router.bind("tcp://127.0.0.1:0").await.map_err(err)?;
        let task = tokio::spawn(async move {
            loop {
                let frames = router.recv().await.map_err(err)?.into_vec();
                // [peer identity, version, kind, id, destination, body]
                if frames.len() != 6 || frames[1] != VERSION {
                    return Err(format!("unexpected message of {} frames", frames.len()));
                }
                received.fetch_add(1, Ordering::Relaxed);
                if frames[2].as_ref() == b"C" {
                    let mut answer = ZmqMessage::from(frames[0].clone());
                    answer.push_back(Bytes::from_static(VERSION));
                    answer.push_back(Bytes::from_static(b"R"));
                    answer.push_back(frames[3].clone());
                    answer.push_back(Bytes::new());
                    answer.push_back(reply.clone());
                    router.send(answer).await.map_err(err)?;
                }
            }
        });
        Ok((endpoint.to_string(), task))
    }

    async fn dealer(endpoint: &str) -> Result<DealerSocket, String> {
        let mut dealer = DealerSocket::new();
        dealer.connect(endpoint).await.map_err(err)?;
        Ok(dealer)
    }

    /// Whether a reply is the answer to call `id` with the whole body.
    fn check(frames: &[Bytes], id: &Bytes, reply_len: usize) -> Result<(), String> {
        match frames {
            [_, kind, got, _, body]
                if kind.as_ref() == b"R" && got == id && body.len() == reply_len =>
            {
                Ok(())
            }
            _ => Err(format!("unexpected reply of {} frames", frames.len())),
        }
    }

    /// Calls: one caller sends and receives on its DEALER; many share one DEALER,
    /// its send half behind a lock, and a reader task hands replies back by id.
    pub async fn calls(b: &Bench, row: Row) -> Result<Measured, String> {
        let bodies = Arc::new(bodies(&b.topic("raw", row), &b.payload)?);
        let (endpoint, server) = server(Arc::default(), bodies.reply.clone()).await?;
        let dealer = dealer(&endpoint).await?;
        let ids = Arc::new(AtomicU64::new(0));
        let result = if row.workers == 1 {
            let dealer = Arc::new(tokio::sync::Mutex::new(dealer));
            drive(b.plan, 1, move || {
                let (dealer, bodies, ids) = (dealer.clone(), bodies.clone(), ids.clone());
                async move {
                    let id = next_id(&ids);
                    let request = message(
                        b"C",
                        id.clone(),
                        bodies.destination.clone(),
                        bodies.request.clone(),
                    );
                    let mut dealer = dealer.lock().await;
                    dealer.send(request).await.map_err(err)?;
                    let reply = dealer.recv().await.map_err(err)?.into_vec();
                    check(&reply, &id, bodies.reply.len())
                }
            })
            .await
            .0
        } else {
            type Waiters = Mutex<HashMap<Bytes, oneshot::Sender<Vec<Bytes>>>>;
            let (send, mut recv) = dealer.split();
            let send = Arc::new(tokio::sync::Mutex::new(send));
            let waiters: Arc<Waiters> = Arc::default();
            let reader = tokio::spawn({
                let waiters = waiters.clone();
                async move {
                    while let Ok(reply) = recv.recv().await {
                        let reply = reply.into_vec();
                        let waiter = reply.get(2).and_then(|id| waiters.lock().ok()?.remove(id));
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(reply);
                        }
                    }
                }
            });
            let result = drive(b.plan, row.workers, move || {
                let (send, waiters, bodies, ids) =
                    (send.clone(), waiters.clone(), bodies.clone(), ids.clone());
                async move {
                    let id = next_id(&ids);
                    let (tx, rx) = oneshot::channel();
                    waiters.lock().map_err(err)?.insert(id.clone(), tx);
                    let request = message(
                        b"C",
                        id.clone(),
                        bodies.destination.clone(),
                        bodies.request.clone(),
                    );
                    send.lock().await.send(request).await.map_err(err)?;
                    let reply = rx.await.map_err(|_| "the reader stopped".to_string())?;
                    check(&reply, &id, bodies.reply.len())
                }
            })
            .await
            .0;
            reader.abort();
            result
        };
        stopped(server, result).await
    }

    /// Casts from casters that share one DEALER, until the ROUTER counted them all.
    pub async fn casts(b: &Bench, row: Row) -> Result<Measured, String> {
        let bodies = Arc::new(bodies(&b.topic("raw", row), &b.payload)?);
        let received = Arc::new(AtomicU64::new(0));
        let (endpoint, server) = server(received.clone(), bodies.reply.clone()).await?;
        let dealer = Arc::new(tokio::sync::Mutex::new(dealer(&endpoint).await?));
        let ids = Arc::new(AtomicU64::new(0));
        let result = cast_rate(b.plan, row.workers, received, move || {
            let (dealer, bodies, ids) = (dealer.clone(), bodies.clone(), ids.clone());
            async move {
                let cast = message(
                    b"S",
                    next_id(&ids),
                    bodies.destination.clone(),
                    bodies.cast.clone(),
                );
                dealer.lock().await.send(cast).await.map_err(err)
            }
        })
        .await;
        stopped(server, result).await
    }

    /// The row's result, or why the server stopped early.
    async fn stopped(
        server: tokio::task::JoinHandle<Result<(), String>>,
        result: Result<Measured, String>,
    ) -> Result<Measured, String> {
        if server.is_finished() {
            let why = match server.await {
                Ok(Err(e)) => e,
                Ok(Ok(())) => "stopped".into(),
                Err(e) => e.to_string(),
            };
            return Err(format!("the raw ROUTER failed: {why}"));
        }
        server.abort();
        result
    }
}

// ---------------------------------------------------------------------------------
// Report: the machine and one Markdown table per payload size.
// ---------------------------------------------------------------------------------

/// One line of a table: a scenario and what each implementation measured.
struct Line {
    row: Row,
    ours: Cell,
    raw: Cell,
    rabbit: Cell,
}

fn machine() -> String {
    let rabbit = common::version("rabbitmqctl", "version")
        .unwrap_or_else(|| "unknown (rabbitmqctl version failed)".into());
    common::machine(&format!(
        "zeromq 0.7 (pure Rust) over TCP loopback; RabbitMQ {rabbit}"
    ))
}

/// The rate and the `p50 / p99` cells (µs) of one implementation.
fn cells(m: &Cell) -> (String, String) {
    match m {
        Some(Ok(m)) => {
            // Whole µs, tenths below 100 µs.
            let us = |d: Duration| match d.as_secs_f64() * 1e6 {
                x if x < 100.0 => format!("{x:.1}"),
                x => format!("{x:.0}"),
            };
            let latency = match (m.p50, m.p99) {
                (Some(p50), Some(p99)) => format!("{} / {}", us(p50), us(p99)),
                _ => "–".into(),
            };
            (format!("{:.0}", m.throughput), latency)
        }
        // Not run, or an error cut to one line.
        other => common::cells(other),
    }
}

/// Ours against raw zeromq, marked against the row's goal.
fn vs_raw(row: Row, ours: &Cell, raw: &Cell) -> String {
    match row.goal() {
        Goal::RateAtLeast(t) => {
            let ratio = common::ratio(common::throughput(ours), raw, Some(t), "");
            if ratio == "–" {
                ratio
            } else {
                format!("rate {ratio}")
            }
        }
        Goal::LatencyAtMost(t) => match (ours, raw) {
            (Some(Ok(o)), Some(Ok(r))) => match (o.p50, r.p50) {
                (Some(o), Some(r)) if !r.is_zero() => {
                    let ratio = o.as_secs_f64() / r.as_secs_f64();
                    let mark = if ratio <= t { "✓" } else { "✗" };
                    format!("p50 {ratio:.2}× {mark} (≤ {t:.1}×)")
                }
                _ => "–".into(),
            },
            _ => "–".into(),
        },
    }
}

fn table(payload: usize, lines: &[Line]) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "\n#### {payload}-byte payload\n");
    let _ = writeln!(
        t,
        "| scenario | ours msg/s | ours p50 / p99 µs | raw zeromq msg/s | raw p50 / p99 µs | ours / raw (target) | RabbitMQ driver msg/s | RabbitMQ p50 / p99 µs | ours / RabbitMQ msg/s | Python oslo.messaging |"
    );
    let _ = writeln!(t, "|---{}|", "|--:".repeat(9));
    for line in lines {
        let (ours, raw, rabbit) = (cells(&line.ours), cells(&line.raw), cells(&line.rabbit));
        let vs_rabbit = common::ratio(common::throughput(&line.ours), &line.rabbit, None, "");
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {vs_rabbit} | {NO_PYTHON} |",
            line.row.label(),
            ours.0,
            ours.1,
            raw.0,
            raw.1,
            vs_raw(line.row, &line.ours, &line.raw),
            rabbit.0,
            rabbit.1,
        );
    }
    t
}

// ---------------------------------------------------------------------------------
// Main: every row of every payload size, then the tables.
// ---------------------------------------------------------------------------------

/// Whether a failure is expected rather than a defect: a driver this build leaves out.
fn excusable(e: &str) -> bool {
    (!cfg!(feature = "zmq") || !cfg!(feature = "rabbit")) && e.contains("no driver for scheme")
}

fn run_row(b: &Bench, o: &Options, row: Row) -> Line {
    let progress = |who: &'static str| {
        move || PROFILE.say(format!("{} B, {}, {who}", b.payload.len(), row.label()))
    };
    let ours_topic = b.topic("ours", row);
    let ours = ours::rpc(&b.zmq_url, &ours_topic, b.plan, row, b.payload.clone());
    let ours = side(o.only.ours, row.flavour, b.plan, progress("ours"), ours);
    let raw = async {
        match row.kind {
            Kind::Call => raw::calls(b, row).await,
            Kind::Cast => raw::casts(b, row).await,
        }
    };
    let raw = side(o.only.raw, row.flavour, b.plan, progress("raw zeromq"), raw);
    let rabbit_topic = b.topic("rabbit", row);
    let rabbit = async {
        let result = ours::rpc(&b.rabbit_url, &rabbit_topic, b.plan, row, b.payload.clone()).await;
        let queues = [rabbit_topic.clone(), format!("{rabbit_topic}.bench")];
        common::delete_queues(b.plan, &b.amqp_url, &queues).await;
        result
    };
    let rabbit = side(
        !o.extra.no_rabbit,
        row.flavour,
        b.plan,
        progress("RabbitMQ driver"),
        rabbit,
    );
    Line {
        row,
        ours,
        raw,
        rabbit,
    }
}

fn main() -> ExitCode {
    // Each row builds the runtime it runs on; this one only sets up logging and waits.
    let rt = match runtime(Flavour::CurrentThread) {
        Ok(rt) => rt,
        Err(e) => {
            PROFILE.say(e);
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(common::main(&PROFILE, async {
        tokio::task::spawn_blocking(run).await.map_err(err)?
    }))
}

/// Every row of every payload size, then the tables; whether a row failed.
fn run() -> Result<bool, String> {
    let options = parse_options();
    let (rabbit_url, amqp_url) = common::rabbit_urls(None);
    let run_id = common::run_id();
    let mut out = String::new();
    if options.full {
        let _ = writeln!(out, "ZeroMQ benchmark on {}", machine());
        let _ = writeln!(
            out,
            "{} s per row after a {} s warm-up, each row on a tokio runtime of its own. Ours: \
             RpcServer and RpcClient on two transports of {} (two nodes, TCP loopback). Raw: \
             one DEALER → one ROUTER with the driver's frames and bodies, prepared once, \
             nothing parsed; the 64 callers share the DEALER with up to 64 requests \
             outstanding. RabbitMQ driver: ours on the local broker. Calls: latency per \
             call. Casts: rate until the server handled every cast, latency until cast \
             returned.",
            options.seconds,
            options.plan().warmup.as_secs_f64(),
            options.extra.zmq_url,
        );
    } else {
        let _ = writeln!(
            out,
            "Smoke pass (no --bench): a few messages per row; the numbers and marks mean nothing."
        );
    }
    let mut failed = false;
    for &size in &options.payloads {
        let b = Bench {
            zmq_url: options.extra.zmq_url.clone(),
            rabbit_url: rabbit_url.clone(),
            amqp_url: amqp_url.clone(),
            plan: options.plan(),
            payload: common::payload(size),
            run_id: run_id.clone(),
        };
        let mut lines = Vec::new();
        for row in Row::ALL.into_iter().filter(|r| options.wants(&r.key())) {
            lines.push(run_row(&b, &options, row));
        }
        for line in &lines {
            let cells = [
                ("ours", &line.ours),
                ("raw", &line.raw),
                ("RabbitMQ driver", &line.rabbit),
            ];
            failed |= common::failures(b.plan, size, &line.row.label(), cells, excusable);
        }
        out.push_str(&table(size, &lines));
    }
    println!("{out}");
    Ok(failed)
}
