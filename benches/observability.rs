//! What metrics and tracing cost: RabbitMQ and ZeroMQ call and cast rows with
//! observability off, then on (the Prometheus recorder installed and every span
//! recorded by an OpenTelemetry layer, filtered at level `info`, whose exporter drops
//! them), in one run on the same broker. Off and on alternate round by round, so drift
//! in the machine or the broker falls on both.
//!
//! ```text
//! cargo bench --bench observability --features opentelemetry              # full run
//! cargo bench --bench observability --features opentelemetry -- --seconds 5 --rounds 3
//! ```
//!
//! Rows: calls one at a time, calls from 64 concurrent callers, casts one at a time
//! and from 256 concurrent callers, with a 100-byte string argument. Targets: at most
//! 5% less throughput with observability on over RabbitMQ, 10% over ZeroMQ (a ratio
//! of at least 0.95 and 0.90).
//!
//! Without `--bench` (as `cargo test --benches` runs it) every row sends a handful of
//! messages as a smoke test. RabbitMQ is `RABBIT_URL` (default
//! `rabbit://guest:guest@127.0.0.1:5672/`, started by `scripts/services`); ZeroMQ
//! needs no broker (`zmq+dummy`, both sides in this process).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use messaging::{Config, Context, Endpoint, RemoteError, RpcClient, RpcServer, Target, Transport};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use serde_json::{Value, json};

const DEFAULT_RABBIT_URL: &str = "rabbit://guest:guest@127.0.0.1:5672/";
const ZMQ_URL: &str = "zmq+dummy://?rpc_zmq_host=127.0.0.1&rpc_zmq_bind_address=127.0.0.1";
const PAYLOAD: usize = 100;
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether metrics are recorded now.
static METRICS_ON: AtomicBool = AtomicBool::new(false);
/// Whether spans are recorded now.
static SPANS_ON: AtomicBool = AtomicBool::new(false);

/// What "on" turns on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    /// Metrics and spans.
    Both,
    /// Metrics only.
    Metrics,
    /// Spans only.
    Spans,
}

#[derive(Parser)]
#[command(about = "The cost of metrics and tracing on RabbitMQ and ZeroMQ calls and casts")]
struct Args {
    /// The full measurement (`cargo bench` passes it); without it, a smoke pass.
    #[arg(long)]
    bench: bool,
    /// Seconds each row measures per round, after a half-second warm-up.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Rounds of off-then-on per row; the table shows their means.
    #[arg(long, default_value_t = 2)]
    rounds: u32,
    /// What "on" turns on, to see what each part costs.
    #[arg(long, value_enum, default_value_t = Part::Both)]
    on: Part,
    /// Leave RabbitMQ out (ZeroMQ rows only).
    #[arg(long)]
    no_rabbit: bool,
}

/// The process's recorder: the Prometheus recorder, whose handles record only while
/// [`METRICS_ON`]. The crates keep the handles they are given (the RPC families per label
/// set, the ZeroMQ queue gauges per link), so the switch is inside every handle, not at
/// registration.
struct Switch(metrics_exporter_prometheus::PrometheusRecorder);

/// A handle that passes updates on only while [`METRICS_ON`].
struct Switched<T>(T);

impl metrics::CounterFn for Switched<Counter> {
    fn increment(&self, value: u64) {
        if METRICS_ON.load(Ordering::Relaxed) {
            self.0.increment(value)
        }
    }
    fn absolute(&self, value: u64) {
        if METRICS_ON.load(Ordering::Relaxed) {
            self.0.absolute(value)
        }
    }
}

// A gauge moved up while on and down while off ends wrong; the run reads no gauge.
impl metrics::GaugeFn for Switched<Gauge> {
    fn increment(&self, value: f64) {
        if METRICS_ON.load(Ordering::Relaxed) {
            self.0.increment(value)
        }
    }
    fn decrement(&self, value: f64) {
        if METRICS_ON.load(Ordering::Relaxed) {
            self.0.decrement(value)
        }
    }
    fn set(&self, value: f64) {
        if METRICS_ON.load(Ordering::Relaxed) {
            self.0.set(value)
        }
    }
}

impl metrics::HistogramFn for Switched<Histogram> {
    fn record(&self, value: f64) {
        if METRICS_ON.load(Ordering::Relaxed) {
            self.0.record(value)
        }
    }
}

impl Recorder for Switch {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, text: SharedString) {
        self.0.describe_counter(key, unit, text)
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, text: SharedString) {
        self.0.describe_gauge(key, unit, text)
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, text: SharedString) {
        self.0.describe_histogram(key, unit, text)
    }
    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Switched(self.0.register_counter(key, metadata))))
    }
    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(Switched(self.0.register_gauge(key, metadata))))
    }
    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Switched(self.0.register_histogram(key, metadata))))
    }
}

/// An exporter that drops every span: what is measured is recording them.
#[derive(Debug)]
struct Discard;

impl opentelemetry_sdk::trace::SpanExporter for Discard {
    async fn export(
        &self,
        _batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

/// Installs the switchable recorder and a tracing subscriber whose OpenTelemetry
/// layer records spans only while [`SPANS_ON`]; returns the Prometheus handle, to show
/// that the metrics were recorded.
fn install() -> Result<metrics_exporter_prometheus::PrometheusHandle, String> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let prometheus = messaging::prometheus::builder()
        .map_err(|e| e.to_string())?
        .build_recorder();
    let handle = prometheus.handle();
    metrics::set_global_recorder(Switch(prometheus)).map_err(|e| e.to_string())?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(Discard)
        .build();
    // While on, the level a service runs with: `info` and above, which takes the crate's
    // spans (all `info`) and leaves out the debug and trace output of the crates under it.
    let layer = messaging::opentelemetry::layer(&provider).with_filter(
        tracing_subscriber::filter::dynamic_filter_fn(|metadata, _| {
            SPANS_ON.load(Ordering::Relaxed) && *metadata.level() <= tracing::Level::INFO
        }),
    );
    tracing_subscriber::registry().with(layer).init();
    // Lives as long as the process.
    std::mem::forget(provider);
    Ok(handle)
}

/// Turns `part` on or off (the other part stays off).
fn switch(part: Part, on: bool) {
    METRICS_ON.store(on && part != Part::Spans, Ordering::Relaxed);
    SPANS_ON.store(on && part != Part::Metrics, Ordering::Relaxed);
}

/// What one row does.
#[derive(Debug, Clone, Copy)]
struct Row {
    call: bool,
    concurrency: usize,
}

impl Row {
    const ALL: [Row; 4] = [
        Row {
            call: true,
            concurrency: 1,
        },
        Row {
            call: true,
            concurrency: 64,
        },
        Row {
            call: false,
            concurrency: 1,
        },
        Row {
            call: false,
            concurrency: 256,
        },
    ];

    fn label(self) -> String {
        let what = if self.call { "calls" } else { "casts" };
        match self.concurrency {
            1 => format!("{what}, one at a time"),
            n => format!("{what}, {n} concurrent"),
        }
    }
}

/// A server on a fresh topic and a client to it.
struct Pair {
    server: RpcServer,
    client: RpcClient,
    handled: Arc<AtomicU64>,
    transports: Vec<Transport>,
}

async fn pair(url: &str, topic: &str) -> Result<Pair, String> {
    let registry = messaging::registry();
    let server_t = registry
        .transport(url, &Config::default())
        .await
        .map_err(|e| e.to_string())?;
    let client_t = registry
        .transport(url, &Config::default())
        .await
        .map_err(|e| e.to_string())?;
    let handled = Arc::new(AtomicU64::new(0));
    let counter = handled.clone();
    let endpoint = Endpoint::new().method("echo", move |_c: Context, v: Value| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
            Ok::<_, RemoteError>(v)
        }
    });
    let server = RpcServer::new(&server_t, Target::topic(topic).server("bench"))
        .endpoint(endpoint)
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let client = RpcClient::new(&client_t, Target::topic(topic)).timeout(CALL_TIMEOUT);
    Ok(Pair {
        server,
        client,
        handled,
        transports: vec![server_t, client_t],
    })
}

impl Pair {
    async fn close(self) {
        self.server.stop().await;
        let _ = self.server.wait().await;
        for t in self.transports {
            t.cleanup().await;
        }
    }
}

/// Sends for `time` (or `count` messages per worker in a smoke pass) from `row`'s
/// workers; returns messages per second, after every cast was handled.
async fn measure(pair: &Pair, row: Row, time: Duration, count: Option<u64>) -> Result<f64, String> {
    let payload = json!({"data": "x".repeat(PAYLOAD)});
    let before = pair.handled.load(Ordering::Relaxed);
    let began = Instant::now();
    let deadline = began + time;
    let mut workers = Vec::new();
    for _ in 0..row.concurrency {
        let (client, payload) = (pair.client.clone(), payload.clone());
        workers.push(tokio::spawn(async move {
            let mut sent = 0u64;
            while count.map_or(Instant::now() < deadline, |n| sent < n) {
                let ctx = Context::new();
                if row.call {
                    client
                        .call::<_, Value>(&ctx, "echo", &payload)
                        .await
                        .map_err(|e| e.to_string())?;
                } else {
                    client
                        .cast(&ctx, "echo", &payload)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                sent += 1;
            }
            Ok::<u64, String>(sent)
        }));
    }
    let mut sent = 0;
    for w in workers {
        sent += w.await.map_err(|e| e.to_string())??;
    }
    // Casts count once the server took them all.
    let drain = Instant::now() + Duration::from_secs(120);
    while pair.handled.load(Ordering::Relaxed) - before < sent {
        if Instant::now() > drain {
            return Err("the server did not take every cast within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(sent as f64 / began.elapsed().as_secs_f64())
}

/// Throughput off and on for every row over `url`.
async fn transport_rows(
    args: &Args,
    name: &str,
    url: &str,
) -> Result<Vec<(String, f64, f64)>, String> {
    let mut out = Vec::new();
    for (i, row) in Row::ALL.into_iter().enumerate() {
        eprintln!("observability bench: {name}, {}", row.label());
        let topic = format!(
            "bench_obs_{}_{i}_{}",
            name.to_lowercase(),
            uuid::Uuid::new_v4().simple()
        );
        let pair = pair(url, &topic).await?;
        let (mut off, mut on) = (0.0, 0.0);
        let time = Duration::from_secs_f64(args.seconds);
        let count = (!args.bench).then_some(3);
        for _ in 0..args.rounds.max(1) {
            for (state, sum) in [(false, &mut off), (true, &mut on)] {
                switch(args.on, state);
                if args.bench {
                    measure(&pair, row, Duration::from_millis(500), None).await?;
                }
                *sum += measure(&pair, row, time, count).await?;
            }
        }
        switch(args.on, false);
        pair.close().await;
        out.push((row.label(), off, on));
    }
    Ok(out)
}

async fn run(args: Args) -> Result<(), String> {
    let handle = install()?;
    let rabbit = std::env::var("RABBIT_URL").unwrap_or_else(|_| DEFAULT_RABBIT_URL.into());
    let mut table = String::from(
        "| transport | row | off (msg/s) | on (msg/s) | on/off | target |\n|---|---|---|---|---|---|\n",
    );
    let transports = [
        ("RabbitMQ", rabbit.as_str(), 0.95),
        ("ZeroMQ", ZMQ_URL, 0.90),
    ];
    for (name, url, target) in transports
        .into_iter()
        .filter(|t| !(args.no_rabbit && t.0 == "RabbitMQ"))
    {
        let rows = transport_rows(&args, name, url)
            .await
            .map_err(|e| format!("{name}: {e} (RabbitMQ is started by scripts/services)"))?;
        for (label, off, on) in rows {
            let rounds = f64::from(args.rounds.max(1));
            let ratio = on / off;
            let verdict = if ratio >= target { "met" } else { "missed" };
            table.push_str(&format!(
                "| {name} | {label} | {:.0} | {:.0} | {ratio:.3} | ≥ {target:.2} {verdict} |\n",
                off / rounds,
                on / rounds
            ));
        }
    }
    let page = handle.render();
    let recorded: &[&str] = if args.on == Part::Spans {
        &[]
    } else {
        &[
            "oslo_messaging_rpc_client_invocation_end_total",
            "oslo_messaging_rpc_server_processing_seconds_bucket",
            "oslo_messaging_driver_publishes_total",
        ]
    };
    for family in recorded {
        if !page.contains(family) {
            return Err(format!("the rows with metrics on recorded no {family}"));
        }
    }
    if args.bench {
        println!("{table}");
    } else {
        println!("observability bench: smoke pass done (numbers mean nothing)\n{table}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("observability bench: {e}");
            ExitCode::FAILURE
        }
    }
}
