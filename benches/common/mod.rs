//! What the benchmarks (`benches/rabbit.rs`, `benches/kafka.rs`) share: the options
//! common to both, how long a row runs and the measurement loop, latency percentiles,
//! the Python peer (`tests/peers/bench_oslo.py`) as a child process, RabbitMQ URLs and
//! queue deletion, and the report (machine line, table cells, ratios, errors).
//!
//! Each benchmark describes what differs in a [`Profile`]: its name, its default
//! payloads and duration, how long its consumers may take to drain and its rows to set
//! up, and what its consumers count.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// The default RabbitMQ broker, in oslo's URL form.
pub const DEFAULT_RABBIT_URL: &str = "rabbit://guest:guest@127.0.0.1:5672/";
/// Call timeout of every implementation.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one operation (a call, a publish and its confirm, a send and its delivery
/// report) may take: a connection lost mid-row must fail the row, not hang the program.
pub const OP_TIMEOUT: Duration = Duration::from_secs(70);

/// What differs between the benchmarks in what they share.
#[derive(Debug)]
pub struct Profile {
    /// `rabbit` or `kafka`: the prefix of messages (`rabbit bench: …`) and names.
    pub name: &'static str,
    /// What the benchmark compares, for `--help`.
    pub about: &'static str,
    /// Default of `--payload`.
    pub payloads: &'static [usize],
    /// Default of `--seconds`.
    pub seconds: f64,
    /// How long a consumer may take to get everything a row sent.
    pub drain_timeout: Duration,
    /// Room for a row's setup and teardown (connections, declarations, group joins).
    pub setup_timeout: Duration,
    /// What consumers count (`messages`, `notifications`), for errors.
    pub counted: &'static str,
}

impl Profile {
    /// Says `what` on stderr, prefixed with the benchmark's name.
    pub fn say(&self, what: impl std::fmt::Display) {
        eprintln!("{} bench: {what}", self.name);
    }
}

// ---------------------------------------------------------------------------------
// Options.
// ---------------------------------------------------------------------------------

/// Which implementations to run.
#[derive(Debug, Clone, Copy)]
pub struct Only {
    pub ours: bool,
    pub raw: bool,
    pub python: bool,
}

/// Command-line options: those of every benchmark, and `extra`, a benchmark's own.
#[derive(Debug, Clone)]
pub struct Options<X> {
    pub profile: &'static Profile,
    /// `--bench` given: the full measurement, else a smoke pass.
    pub full: bool,
    pub only: Only,
    pub payloads: Vec<usize>,
    pub seconds: f64,
    /// Row keys to run; empty: all.
    pub rows: Vec<String>,
    pub extra: X,
}

/// An implementation `--only` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Implementation {
    Ours,
    Raw,
    Python,
}

/// The options every benchmark has, as clap reads them.
#[derive(Debug, clap::Args)]
struct CommonArgs {
    /// The full measurement (`cargo bench` passes it); without it, a smoke pass of a few
    /// messages per row whose numbers mean nothing (`cargo test --bench NAME`).
    #[arg(long)]
    bench: bool,
    /// Leaves Python oslo.messaging out (also when `--only` names it).
    #[arg(long)]
    no_python: bool,
    /// The implementations to run, comma-separated: ours, raw, python [default: all].
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = implementation)]
    only: Option<Vec<Implementation>>,
    /// Payload sizes in bytes, comma-separated [default: the benchmark's].
    #[arg(long, value_name = "BYTES", value_delimiter = ',', value_parser = size)]
    payload: Option<Vec<usize>>,
    /// How long each row measures, after a one-second warm-up [default: the
    /// benchmark's].
    #[arg(long, value_parser = seconds)]
    seconds: Option<f64>,
    /// The rows to run, by key, comma-separated [default: all].
    #[arg(long, value_name = "KEYS", value_delimiter = ',', value_parser = trimmed)]
    rows: Option<Vec<String>>,
}

/// A benchmark's command line: the options of every benchmark and its own, `X`.
#[derive(Debug, clap::Parser)]
// As before clap: an option given twice counts once, the last.
#[command(args_override_self = true)]
struct Cli<X: clap::Args> {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    extra: X,
}

fn implementation(s: &str) -> Result<Implementation, String> {
    <Implementation as clap::ValueEnum>::from_str(s.trim(), false)
        .map_err(|_| format!("takes ours, raw, python; got {s:?}"))
}

fn size(s: &str) -> Result<usize, String> {
    s.trim().parse().map_err(|e| format!("{e}"))
}

fn seconds(s: &str) -> Result<f64, String> {
    let seconds: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !(seconds > 0.0 && seconds.is_finite()) {
        return Err("must be positive".into());
    }
    Ok(seconds)
}

fn trimmed(s: &str) -> Result<String, String> {
    Ok(s.trim().to_string())
}

/// A value parser for a number of at least `min`, for a benchmark's own options.
#[allow(dead_code)] // not every benchmark has such options
pub fn at_least<T>(min: T) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: FromStr + PartialOrd + std::fmt::Display + Clone + Send + Sync + 'static,
    T::Err: std::fmt::Display,
{
    move |s: &str| {
        let n: T = s.parse().map_err(|e| format!("{e}"))?;
        if n < min {
            return Err(format!("must be at least {min}"));
        }
        Ok(n)
    }
}

/// The arguments clap is to read: the program name, then the options `command` knows
/// (with their values), in order. Anything else is dropped, as the benchmarks always
/// ignored it: what cargo or a test runner passes (filters, `--quiet`, `--nocapture`).
fn known_args(command: &clap::Command, args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut args = args.into_iter();
    let mut kept: Vec<String> = args.next().into_iter().collect();
    while let Some(arg) = args.next() {
        let (name, inline_value) = match arg.split_once('=') {
            Some((name, _)) => (name, true),
            None => (arg.as_str(), false),
        };
        let known = command.get_arguments().find(|a| match name.strip_prefix("--") {
            Some(long) => a.get_long() == Some(long),
            None => {
                let mut short = name.strip_prefix('-').unwrap_or_default().chars();
                matches!((short.next(), short.next()), (Some(c), None) if a.get_short() == Some(c))
            }
        });
        if let Some(known) = known {
            let takes_value = known.get_action().takes_values();
            kept.push(arg.clone());
            if takes_value && !inline_value {
                kept.extend(args.next());
            }
        }
    }
    kept
}

impl<X: clap::Args + clap::FromArgMatches> Options<X> {
    /// Parses the options every benchmark has (`--bench`, `--no-python`, `--only`,
    /// `--payload`, `--seconds`, `--rows` among `keys`) and the benchmark's own, `X`;
    /// `adjust` then sees the result and what was given. Arguments it does not know
    /// are ignored (filters, `--nocapture`: whatever cargo or a test runner passes);
    /// `--help` shows them all, and a bad value ends the program with clap's message.
    pub fn parse(
        profile: &'static Profile,
        keys: &[&str],
        adjust: impl FnOnce(&mut Self, &clap::ArgMatches),
    ) -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let payloads = profile
            .payloads
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>();
        let mut command = Cli::<X>::command()
            .name(profile.name)
            .bin_name(format!("cargo bench --bench {} --", profile.name))
            .about(profile.about)
            .mut_arg("payload", |a| {
                a.help(format!(
                    "Payload sizes in bytes, comma-separated [default: {}]",
                    payloads.join(",")
                ))
            })
            .mut_arg("seconds", |a| {
                a.help(format!(
                    "How long each row measures, after a one-second warm-up [default: {}]",
                    profile.seconds
                ))
            })
            .mut_arg("rows", |a| {
                a.help(format!(
                    "The rows to run, comma-separated: {} [default: all]",
                    keys.join(", ")
                ))
            });
        command.build();
        let args = known_args(&command, std::env::args());
        let matches = command
            .try_get_matches_from_mut(args)
            .unwrap_or_else(|e| e.exit());
        let cli = Cli::<X>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let rows = cli.common.rows.unwrap_or_default();
        if let Some(bad) = rows.iter().find(|r| !keys.contains(&r.as_str())) {
            command
                .error(
                    clap::error::ErrorKind::InvalidValue,
                    format!("--rows takes {}; got {bad:?}", keys.join(", ")),
                )
                .exit();
        }
        let python = !cli.common.no_python;
        let only = match cli.common.only {
            None => Only {
                ours: true,
                raw: true,
                python,
            },
            Some(list) => Only {
                ours: list.contains(&Implementation::Ours),
                raw: list.contains(&Implementation::Raw),
                python: list.contains(&Implementation::Python) && python,
            },
        };
        let mut options = Options {
            profile,
            full: cli.common.bench,
            only,
            payloads: cli
                .common
                .payload
                .unwrap_or_else(|| profile.payloads.to_vec()),
            seconds: cli.common.seconds.unwrap_or(profile.seconds),
            rows,
            extra: cli.extra,
        };
        adjust(&mut options, &matches);
        options
    }
}

impl<X> Options<X> {
    /// Whether the row of `key` runs.
    pub fn wants(&self, key: &str) -> bool {
        self.rows.is_empty() || self.rows.iter().any(|k| k == key)
    }

    /// Whether Python runs for the `i`th payload size: the peer takes seconds to start
    /// and stop, so a smoke pass runs it for the first size only.
    pub fn python_at(&self, i: usize) -> bool {
        self.only.python && (self.full || i == 0)
    }

    pub fn plan(&self) -> Plan {
        if self.full {
            Plan {
                warmup: Duration::from_secs(1),
                measure: Duration::from_secs_f64(self.seconds),
                max_ops: None,
                profile: self.profile,
            }
        } else {
            // A smoke pass: a few messages per sender, bounded in time.
            Plan {
                warmup: Duration::ZERO,
                measure: Duration::from_secs(2),
                max_ops: Some(3),
                profile: self.profile,
            }
        }
    }

    /// Fails when Python is wanted but not installed.
    pub fn check_python(&self) -> Result<(), String> {
        if self.only.python && python::interpreter().is_none() {
            return Err(
                "no Python with oslo.messaging (.venv or OSLO_PEER_PYTHON): run \
                 scripts/services, or pass --no-python"
                    .into(),
            );
        }
        Ok(())
    }
}

/// How long a row runs.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub warmup: Duration,
    pub measure: Duration,
    /// Operations per sender at most (the smoke pass).
    pub max_ops: Option<u64>,
    pub profile: &'static Profile,
}

impl Plan {
    /// How long a whole row (setup, measurement, drain, teardown) may take.
    pub fn row_limit(&self) -> Duration {
        self.warmup
            + self.measure
            + self.profile.drain_timeout
            + OP_TIMEOUT
            + self.profile.setup_timeout
    }

    /// How long a run of the Python peer with `rows` rows may take: every row bounded,
    /// plus the peer's start and stop.
    pub fn peer_limit(&self, rows: usize) -> Duration {
        let per_row = self.warmup + self.measure + self.profile.drain_timeout + OP_TIMEOUT;
        per_row * rows as u32 + self.profile.setup_timeout
    }
}

// ---------------------------------------------------------------------------------
// Names, payloads, errors.
// ---------------------------------------------------------------------------------

/// Makes topic, queue and group names unique to one run.
pub fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// A topic (and so queue) name unique to a run, implementation, row and payload size:
/// `bench_<benchmark>_<run>_<implementation>_<row>_<size>`.
pub fn topic(plan: Plan, run_id: &str, implementation: &str, key: &str, size: usize) -> String {
    format!(
        "bench_{}_{run_id}_{implementation}_{}_{size}",
        plan.profile.name,
        key.replace('-', "_"),
    )
}

/// The argument of `echo` and the payload of notifications: `{"data": "<payload>"}`.
#[derive(Serialize)]
pub struct Data<'a> {
    pub data: &'a str,
}

/// The argument `echo` receives.
#[derive(serde::Deserialize)]
pub struct Echo {
    pub data: String,
}

/// One `echo` call of ours with `payload`, checking that it came back whole.
pub async fn echo_call(client: &messaging::RpcClient, payload: &str) -> Result<(), String> {
    let echoed: String = client
        .call(&messaging::Context::new(), "echo", Data { data: payload })
        .await
        .map_err(err)?;
    if echoed.len() != payload.len() {
        return Err("echo returned a different payload".into());
    }
    Ok(())
}

/// Sends one `bench.event` notification of priority INFO with `payload`, as every
/// notifying row of ours does.
pub async fn notify(
    notifier: &messaging::notify::Notifier,
    payload: impl Serialize,
) -> Result<(), String> {
    use messaging::notify::Priority;
    notifier
        .try_notify(
            &messaging::Context::new(),
            "bench.event",
            Priority::Info,
            payload,
        )
        .await
        .map_err(err)
}

/// Builds a payload of `len` ASCII characters that need no JSON escaping.
pub fn payload(len: usize) -> Arc<str> {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|i| alphabet[i % alphabet.len()] as char)
        .collect::<String>()
        .into()
}

/// A short error string from anything displayable.
pub fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A benchmark's `main`: logs set up, then `run`, which says whether a row failed.
/// What ends it early is said (prefixed with the benchmark's name) and fails it.
pub async fn main(
    profile: &Profile,
    run: impl Future<Output = Result<bool, String>>,
) -> std::process::ExitCode {
    init_tracing();
    match run.await {
        Ok(false) => std::process::ExitCode::SUCCESS,
        Ok(true) => std::process::ExitCode::FAILURE,
        Err(e) => {
            profile.say(e);
            std::process::ExitCode::FAILURE
        }
    }
}

/// Errors of the clients and the drivers (a connection lost mid-row) explain failed
/// rows; RUST_LOG shows more.
fn init_tracing() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .init();
}

// ---------------------------------------------------------------------------------
// Measurement.
// ---------------------------------------------------------------------------------

/// What a row reports, whichever implementation measured it.
#[derive(Debug, Clone)]
pub struct Measured {
    pub throughput: f64,
    /// None for rows without latency (the Kafka drain).
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
    pub note: Option<String>,
}

/// What one implementation measured in a row; `None`: not run.
pub type Cell = Option<Result<Measured, String>>;

/// Throughput and p50/p99 of `latencies` (any order) over `elapsed`.
pub fn measured(mut latencies: Vec<Duration>, elapsed: Duration) -> Result<Measured, String> {
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
pub async fn drive<F, Fut>(plan: Plan, workers: usize, op: F) -> (Result<Measured, String>, u64)
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
    while let Some(joined) = tasks.join_next().await {
        match joined.map_err(err).and_then(|r| r) {
            Ok((latencies, worker_last)) => {
                all.extend(latencies);
                last = last.max(worker_last);
            }
            // Dropping the set stops the other senders.
            Err(e) => return (Err(e), total.load(Ordering::Relaxed)),
        }
    }
    let sent = total.load(Ordering::Relaxed);
    (measured(all, last.saturating_duration_since(window)), sent)
}

/// Waits until `received` reaches `expected`: a row that sends is only over when its
/// consumer has everything.
pub async fn drain(plan: Plan, received: &AtomicU64, expected: u64) -> Result<(), String> {
    let within = plan.profile.drain_timeout;
    let deadline = Instant::now() + within;
    loop {
        let got = received.load(Ordering::Relaxed);
        if got >= expected {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the consumer got {got} of {expected} {} within {within:?}",
                plan.profile.counted
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Bounds a whole row (setup, measurement, drain, teardown).
pub async fn bounded<T>(
    plan: Plan,
    row: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    let limit = plan.row_limit();
    tokio::time::timeout(limit, row)
        .await
        .unwrap_or_else(|_| Err(format!("the row did not finish within {limit:?}")))
}

/// One implementation's side of a row: if `enabled`, says so with `announce` and runs
/// `row` bounded; else `None`.
pub async fn side(
    enabled: bool,
    plan: Plan,
    announce: impl FnOnce(),
    row: impl Future<Output = Result<Measured, String>>,
) -> Cell {
    if !enabled {
        return None;
    }
    announce();
    Some(bounded(plan, row).await)
}

// ---------------------------------------------------------------------------------
// RabbitMQ: URLs and queue deletion.
// ---------------------------------------------------------------------------------

/// (oslo URL, lapin URL): `url` (a command-line option), else `RABBIT_URL`, else
/// [`DEFAULT_RABBIT_URL`], in either form, the other derived unless `AMQP_URL` gives
/// lapin's, as the driver's tests do.
pub fn rabbit_urls(url: Option<String>) -> (String, String) {
    let url = url.or_else(|| std::env::var("RABBIT_URL").ok());
    let url = url.unwrap_or_else(|| DEFAULT_RABBIT_URL.into());
    let (scheme, rest) = url.split_once("://").unwrap_or(("rabbit", &url));
    let (authority, vhost) = rest.split_once('/').unwrap_or((rest, ""));
    // oslo reads an empty vhost as RabbitMQ's default `/`; lapin needs it spelled `%2f`.
    let (oslo_vhost, amqp_vhost) = match vhost {
        "" | "%2f" | "%2F" => ("", "%2f"),
        v => (v, v),
    };
    let (oslo, amqp) = if scheme.starts_with("amqp") {
        (
            format!("rabbit://{authority}/{oslo_vhost}"),
            format!("{scheme}://{authority}/{amqp_vhost}"),
        )
    } else {
        (
            format!("{scheme}://{authority}/{oslo_vhost}"),
            format!("amqp://{authority}/{amqp_vhost}"),
        )
    };
    (oslo, std::env::var("AMQP_URL").unwrap_or(amqp))
}

/// Deletes the named RabbitMQ queues (with whatever they still hold), best effort and
/// within the setup timeout. Each on its own channel, since a failed delete closes its
/// channel; each channel is closed before the connection, lest lapin's close of a
/// dropped channel race the connection's close.
pub async fn delete_queues(plan: Plan, amqp_url: &str, queues: &[String]) {
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
    let _ = tokio::time::timeout(plan.profile.setup_timeout, work).await;
}

// ---------------------------------------------------------------------------------
// Python oslo.messaging: tests/peers/bench_oslo.py.
// ---------------------------------------------------------------------------------

pub mod python {
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

    /// What one run of the peer reports: the oslo.messaging version, each row by the
    /// key it was given, and (RabbitMQ) the client's reply queue, which oslo leaves
    /// behind to expire.
    pub struct Report {
        pub version: String,
        pub rows: HashMap<String, Result<Measured, String>>,
        pub reply_queue: Option<String>,
    }

    /// The peer's command: rows `keys` of `payload` bytes against `url`, on topics
    /// named after `topic`, as long as `plan` says. The caller adds its own arguments.
    pub fn command(
        plan: Plan,
        url: &str,
        payload: usize,
        keys: &[String],
        topic: &str,
    ) -> Result<std::process::Command, String> {
        let py = interpreter().ok_or("no .venv: run scripts/services")?;
        let mut cmd = std::process::Command::new(py);
        cmd.arg(repo().join("tests/peers/bench_oslo.py"))
            .args(["--url", url])
            .args(["--payload", &payload.to_string()])
            .args(["--seconds", &plan.measure.as_secs_f64().to_string()])
            .args(["--warmup", &plan.warmup.as_secs_f64().to_string()])
            .args(["--rows", &keys.join(",")])
            .args(["--topic", topic]);
        if let Some(m) = plan.max_ops {
            cmd.args(["--max-ops", &m.to_string()]);
        }
        Ok(cmd)
    }

    /// Runs the peer's `cmd` of `rows` rows, bounded, and reads its report.
    pub fn run(plan: Plan, cmd: std::process::Command, rows: usize) -> Result<Report, String> {
        let (status, stdout, stderr) = output_within(cmd, plan.peer_limit(rows))?;
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
            report.rows.insert(key.to_string(), measured);
        }
        Ok(report)
    }

    /// Puts what the peer reported (or its failure) into the Python cells of a table,
    /// each found by its row's key; returns the oslo.messaging version.
    pub fn fill<'a, K: AsRef<str>>(
        report: Result<Report, String>,
        cells: impl IntoIterator<Item = (K, &'a mut Cell)>,
    ) -> Option<String> {
        match report {
            Ok(mut report) => {
                for (key, cell) in cells {
                    *cell = Some(
                        report
                            .rows
                            .remove(key.as_ref())
                            .unwrap_or_else(|| Err("no result".into())),
                    );
                }
                Some(report.version)
            }
            Err(e) => {
                for (_, cell) in cells {
                    *cell = Some(Err(e.clone()));
                }
                None
            }
        }
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
// Report: the machine line and the Markdown tables.
// ---------------------------------------------------------------------------------

/// The first line of `cmd arg`'s output, if it runs and says something.
pub fn version(cmd: &str, arg: &str) -> Option<String> {
    // A command of several words (`scripts/services rabbit4-ctl`) runs as such.
    let mut words = cmd.split_whitespace();
    std::process::Command::new(words.next()?)
        .args(words)
        .arg(arg)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The CPU, how busy the machine was, then `brokers`.
pub fn machine(brokers: &str) -> String {
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
    // Other work on a small machine moves the numbers: say how busy it was.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "?".into());
    format!("{model}, {cpus} CPUs (load average {load} at start); {brokers}")
}

/// The throughput and the `p50 / p99` cells of one implementation.
pub fn cells(m: &Cell) -> (String, String) {
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

/// The throughput of a measured cell.
pub fn throughput(m: &Cell) -> Option<f64> {
    match m {
        Some(Ok(m)) => Some(m.throughput),
        _ => None,
    }
}

/// `ours / other`, marked against `target` if there is one, else followed by
/// `untargeted`; `–` unless both measured.
pub fn ratio(ours: Option<f64>, other: &Cell, target: Option<f64>, untargeted: &str) -> String {
    match (ours, other) {
        (Some(o), Some(Ok(r))) if r.throughput > 0.0 => {
            let ratio = o / r.throughput;
            match target {
                Some(t) => {
                    let mark = if ratio >= t { "✓" } else { "✗" };
                    format!("{ratio:.2}× {mark} (≥ {t:.1}×)")
                }
                None => format!("{ratio:.2}×{untargeted}"),
            }
        }
        _ => "–".into(),
    }
}

/// One payload size's table, filled by [`Table::line`].
pub struct Table(String);

impl Table {
    /// The heading and head of the table: ours, `raw` (the name of the raw client),
    /// their ratio, Python (`python_version` of oslo.messaging), and with `vs_python`
    /// the ratio of ours to Python.
    pub fn new(payload: usize, raw: &str, python_version: Option<&str>, vs_python: bool) -> Table {
        let py = python_version.map_or("Python".to_string(), |v| format!("oslo.messaging {v}"));
        let mut t = String::new();
        let _ = writeln!(t, "\n#### {payload}-byte payload\n");
        let _ = write!(
            t,
            "| scenario | ours msg/s | ours p50 / p99 ms | {raw} msg/s | raw p50 / p99 ms | ours / raw (target) | {py} msg/s | {py} p50 / p99 ms |"
        );
        if vs_python {
            let _ = write!(t, " ours / {py} (target) |");
        }
        let columns = if vs_python { 9 } else { 8 };
        let _ = writeln!(t, "\n|---{}|", "|--:".repeat(columns - 1));
        Table(t)
    }

    /// A line: the scenario, the cells of each implementation ([`cells`]) and the
    /// ratios (`vs_python` only in a table that has the column).
    pub fn line(
        &mut self,
        scenario: &str,
        [ours, raw, python]: [&(String, String); 3],
        vs_raw: &str,
        vs_python: Option<&str>,
    ) {
        let _ = write!(
            self.0,
            "| {scenario} | {} | {} | {} | {} | {vs_raw} | {} | {} |",
            ours.0, ours.1, raw.0, raw.1, python.0, python.1
        );
        if let Some(vs_python) = vs_python {
            let _ = write!(self.0, " {vs_python} |");
        }
        self.0.push('\n');
    }

    pub fn finish(self) -> String {
        self.0
    }
}

/// Says every failure among one scenario's `cells` (`[(who, cell)]`); whether any of
/// them is not `excused`.
pub fn failures(
    plan: Plan,
    size: usize,
    scenario: &str,
    cells: [(&str, &Cell); 3],
    excused: impl Fn(&str) -> bool,
) -> bool {
    let mut failed = false;
    for (who, cell) in cells {
        if let Some(Err(e)) = cell {
            plan.profile
                .say(format!("{size} B, {scenario}, {who}: {e}"));
            failed |= !excused(e);
        }
    }
    failed
}

/// Ends a row of ours: stops its server (letting in-flight requests finish) and closes
/// the client's and the server's transports.
pub async fn finish_row(
    server: &messaging::RpcServer,
    client: &messaging::Transport,
    server_side: &messaging::Transport,
) {
    server.stop().await;
    let _ = server.wait().await;
    client.cleanup().await;
    server_side.cleanup().await;
}
