//! Faults under load: sustained calls, casts and notifications over the three-node
//! RabbitMQ test cluster while its nodes crash (their Erlang VMs killed) and come back
//! one after another; then a table of what was sent, delivered, lost, duplicated and
//! failed, and the longest stall.
//!
//! ```text
//! scripts/services cluster                        # the cluster (once)
//! cargo run --release --example faults            # 20 crashes, about five minutes
//! cargo run --release --example faults -- --bounces 3 --url rabbit://guest:guest@127.0.0.1:5680/
//! ```
//!
//! Casts are sent with `at_least_once` and notifications with the default unlimited
//! retry, every publish confirmed, onto quorum queues: none may be lost. No call may
//! take longer than its timeout, and no cast or notification longer than
//! [`SEND_BOUND`] (a failover takes seconds); a sender still waiting at the end counts
//! as past its bound. The program exits 1 if any of that happens.

use std::collections::HashMap;
use std::future::Future;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use messaging::notify::{Notification, NotificationListener, Notifier, Priority};
use messaging::{Config, Context, Endpoint, RemoteError, RpcClient, RpcServer, Target};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

#[derive(Parser)]
#[command(about = "Calls, casts and notifications while RabbitMQ cluster nodes crash")]
struct Args {
    /// How many node crashes (nodes 1, 2, 3 in turn).
    #[arg(long, default_value_t = 20)]
    bounces: u32,
    /// Seconds of load between a node's return and the next crash.
    #[arg(long, default_value_t = 3.0)]
    interval: f64,
    /// Seconds a crashed node stays down.
    #[arg(long, default_value_t = 2.0)]
    down: f64,
    /// The transport URL: the cluster's nodes, or HAProxy (`127.0.0.1:5680`).
    #[arg(
        long,
        default_value = "rabbit://guest:guest@127.0.0.1:5681,guest:guest@127.0.0.1:5682,guest:guest@127.0.0.1:5683/"
    )]
    url: String,
    /// Concurrent callers; casters and notifiers are half as many.
    #[arg(long, default_value_t = 4)]
    workers: u32,
}

/// Quorum queues, and reconnect waits short enough for a crashed node not to hold
/// senders for oslo's default backoff. Its own control exchange: with quorum queues
/// exchanges are declared durable, and a durable `openstack` exchange would refuse
/// other programs' non-durable declaration of it.
const CONFIG: &str = "[DEFAULT]\ncontrol_exchange = faults\n\
    [oslo_messaging_rabbit]\nrabbit_quorum_queue = true\n\
    rabbit_transient_quorum_queue = true\nkombu_reconnect_delay = 0.5\n\
    rabbit_retry_interval = 1\nrabbit_retry_backoff = 1\nrabbit_interval_max = 2\n\
    heartbeat_timeout_threshold = 10\n";

const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a cast or notification may take to be confirmed: several failovers.
const SEND_BOUND: Duration = Duration::from_secs(60);

/// Counts for one kind of traffic.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    /// Calls answered; casts and notifications confirmed.
    succeeded: AtomicU64,
    failed: AtomicU64,
    /// The first few distinct errors.
    errors: Mutex<Vec<String>>,
    /// Sends that took longer than their bound, or never ended.
    hung: AtomicU64,
    /// Sequence numbers of the confirmed sends, with when (since the program began)
    /// they were confirmed.
    confirmed: Mutex<Vec<(u64, Duration)>>,
    /// How often each sequence number arrived.
    received: Mutex<HashMap<u64, u32>>,
    stalls: Mutex<Stalls>,
}

/// The longest time without a success.
struct Stalls {
    last: Instant,
    longest: Duration,
}

impl Default for Stalls {
    fn default() -> Self {
        Stalls {
            last: Instant::now(),
            longest: Duration::ZERO,
        }
    }
}

impl Tally {
    fn succeeded(&self, n: u64) {
        self.succeeded.fetch_add(1, Ordering::Relaxed);
        self.confirmed.lock().unwrap().push((n, EPOCH.elapsed()));
        let mut stalls = self.stalls.lock().unwrap();
        stalls.longest = stalls.longest.max(stalls.last.elapsed());
        stalls.last = Instant::now();
    }

    fn failed(&self, error: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut errors = self.errors.lock().unwrap();
        if errors.len() < 3 && !errors.contains(&error) {
            errors.push(error);
        }
    }

    fn received(&self, n: u64) {
        *self.received.lock().unwrap().entry(n).or_default() += 1;
    }

    fn arrivals(&self) -> u64 {
        self.received
            .lock()
            .unwrap()
            .values()
            .map(|&c| u64::from(c))
            .sum()
    }

    /// Confirmed sends that never arrived (with when they were confirmed), and
    /// arrivals beyond the first.
    fn lost_and_duplicated(&self) -> (Vec<(u64, Duration)>, u64) {
        let received = self.received.lock().unwrap();
        let lost = self
            .confirmed
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| !received.contains_key(n))
            .copied()
            .collect();
        let duplicated = received
            .values()
            .map(|&c| u64::from(c.saturating_sub(1)))
            .sum();
        (lost, duplicated)
    }
}

/// This host's short name, as the cluster's node names have it (asked once).
static HOST: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    std::process::Command::new("hostname")
        .arg("-s")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
});

/// Node `n` of the cluster, as `rabbitmqctl -n` wants it.
fn node_name(n: u32) -> String {
    format!("omsg{n}@{}", *HOST)
}

/// When the program began: times in its output count from here.
static EPOCH: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

/// Seconds since [`EPOCH`], for log lines.
fn since_start() -> String {
    format!("{:.1} s", EPOCH.elapsed().as_secs_f64())
}

/// The run's queues as node 1 lists them: name, type, messages ready, delivered but
/// unacknowledged, consumers; `None` if rabbitmqctl fails.
async fn list_queues(topic: &str) -> Option<Vec<Vec<String>>> {
    let out = tokio::process::Command::new("rabbitmqctl")
        .args(["-n", &node_name(1), "-q", "list_queues"])
        .args([
            "name",
            "type",
            "messages_ready",
            "messages_unacknowledged",
            "consumers",
        ])
        .output()
        .await
        .ok()
        .filter(|o| o.status.success())?;
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(topic))
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect(),
    )
}

/// How many of the run's messages the broker still holds (ready or unacknowledged).
async fn queued(topic: &str) -> Option<u64> {
    let queues = list_queues(topic).await?;
    let mut held = 0;
    for columns in &queues {
        for count in columns.get(2..4)? {
            held += count.parse::<u64>().ok()?;
        }
    }
    Some(held)
}

/// What casters and notifiers wait between sends, so calls get their share.
const PAUSE: Duration = Duration::from_millis(2);

/// Starts senders of numbered messages that run until `running` turns false.
struct Sender {
    running: Arc<AtomicBool>,
    /// The next number, shared by every sender: each message has its own.
    next: Arc<AtomicU64>,
}

impl Sender {
    /// Sends with `send` over and over, `pause` apart, counting in `tally`; a send
    /// that takes longer than `bound` counts as hung.
    fn spawn<F, Fut>(
        &self,
        tally: Arc<Tally>,
        pause: Duration,
        bound: Duration,
        send: F,
    ) -> (JoinHandle<()>, Arc<Tally>)
    where
        F: Fn(u64) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send,
    {
        let (running, next) = (self.running.clone(), self.next.clone());
        let counted = tally.clone();
        let handle = tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                tally.sent.fetch_add(1, Ordering::Relaxed);
                let started = Instant::now();
                let outcome = send(n).await;
                if started.elapsed() > bound {
                    tally.hung.fetch_add(1, Ordering::Relaxed);
                }
                match outcome {
                    Ok(()) => tally.succeeded(n),
                    Err(e) => {
                        tally.failed(e);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        });
        (handle, counted)
    }
}

/// Runs `scripts/services <args>`.
async fn services(args: &[&str]) -> Result<String, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/services");
    let out = tokio::process::Command::new(script)
        .args(args)
        .output()
        .await
        .map_err(|e| format!("{script}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/services {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // The driver's warnings (reconnects, failed acks) with RUST_LOG=warn.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(args).await {
        Ok(clean) if clean => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("faults: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<bool, String> {
    std::sync::LazyLock::force(&EPOCH);
    services(&["cluster"]).await?;
    let config = Config::from_ini_str(CONFIG).map_err(|e| e.to_string())?;
    let registry = messaging::registry();
    let transport = |_: &str| registry.transport(&args.url, &config);
    let server_transport = transport("server").await.map_err(|e| e.to_string())?;
    let client_transport = transport("client").await.map_err(|e| e.to_string())?;
    let topic = format!("faults_{}", std::process::id());
    let (calls, casts, notes) = (
        Arc::new(Tally::default()),
        Arc::new(Tally::default()),
        Arc::new(Tally::default()),
    );

    let cast_tally = casts.clone();
    let endpoint = Endpoint::new()
        .method("echo", |_c: Context, a: Value| async move {
            Ok::<_, RemoteError>(a)
        })
        .method("count", move |_c: Context, a: Value| {
            let tally = cast_tally.clone();
            async move {
                tally.received(a["n"].as_u64().unwrap_or(u64::MAX));
                Ok::<_, RemoteError>(Value::Null)
            }
        });
    let server = RpcServer::new(&server_transport, Target::topic(topic.clone()).server("s1"))
        .endpoint(endpoint)
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let note_tally = notes.clone();
    let listener = NotificationListener::new(&server_transport, [Target::topic(topic.clone())])
        .on(Priority::Info, move |n: Notification| {
            let tally = note_tally.clone();
            async move { tally.received(n.payload["n"].as_u64().unwrap_or(u64::MAX)) }
        })
        .start()
        .await
        .map_err(|e| e.to_string())?;

    let running = Arc::new(AtomicBool::new(true));
    let next = Arc::new(AtomicU64::new(0));
    let sender = Sender {
        running: running.clone(),
        next,
    };
    let mut senders = Vec::new();
    for _ in 0..args.workers {
        let client =
            RpcClient::new(&client_transport, Target::topic(topic.clone())).timeout(CALL_TIMEOUT);
        let tally = calls.clone();
        let bound = CALL_TIMEOUT + Duration::from_secs(1);
        senders.push(
            sender.spawn(calls.clone(), Duration::ZERO, bound, move |n| {
                let (client, tally) = (client.clone(), tally.clone());
                async move {
                    let outcome = client
                        .call::<_, Value>(&Context::new(), "echo", json!({ "n": n }))
                        .await;
                    match outcome {
                        Ok(v) if v == json!({ "n": n }) => {
                            tally.received(n);
                            Ok(())
                        }
                        Ok(other) => Err(format!("wrong answer {other}")),
                        Err(e) => Err(e.to_string()),
                    }
                }
            }),
        );
    }
    for _ in 0..args.workers.div_ceil(2) {
        let caster =
            RpcClient::new(&client_transport, Target::topic(topic.clone())).at_least_once(true);
        senders.push(sender.spawn(casts.clone(), PAUSE, SEND_BOUND, move |n| {
            let caster = caster.clone();
            async move {
                caster
                    .cast(&Context::new(), "count", json!({ "n": n }))
                    .await
                    .map_err(|e| e.to_string())
            }
        }));
        let notifier = Notifier::new(&client_transport, "faults").topics([topic.clone()]);
        senders.push(sender.spawn(notes.clone(), PAUSE, SEND_BOUND, move |n| {
            let notifier = notifier.clone();
            async move {
                notifier
                    .try_notify(
                        &Context::new(),
                        "faults.tick",
                        Priority::Info,
                        json!({ "n": n }),
                    )
                    .await
                    .map_err(|e| e.to_string())
            }
        }));
    }

    let started = Instant::now();
    let mut bounces = 0;
    for i in 0..args.bounces {
        tokio::time::sleep(Duration::from_secs_f64(args.interval)).await;
        let node = (i % 3 + 1).to_string();
        let stopped = services(&["node-stop", &node]).await?;
        eprintln!("bounce {} (at {}): {stopped}", i + 1, since_start());
        tokio::time::sleep(Duration::from_secs_f64(args.down)).await;
        let started = services(&["node-start", &node]).await?;
        eprintln!("bounce {} (at {}): {started}", i + 1, since_start());
        bounces += 1;
    }
    tokio::time::sleep(Duration::from_secs_f64(args.interval)).await;
    running.store(false, Ordering::Relaxed);
    // A sender still waiting for its send well past the bound is stuck: counted, and
    // left behind.
    for (sender, tally) in senders {
        if tokio::time::timeout(SEND_BOUND + Duration::from_secs(10), sender)
            .await
            .is_err()
        {
            eprintln!("faults: a sender is still waiting for its send; counted as past its bound");
            tally.hung.fetch_add(1, Ordering::Relaxed);
        }
    }
    let loaded = started.elapsed();
    // Whatever is still on its way arrives, or is lost: done once the broker holds
    // none of the run's messages (none ready, none delivered and unacked) and nothing
    // arrived since it said so; or, where the broker cannot be asked, after a quiet
    // time longer than the driver lets an ack take (10 s). A listener stuck on one is
    // seen by the deadline, with the queues' state printed.
    let quiet = Duration::from_secs(15);
    let mut stable_since = Instant::now();
    let mut last = (casts.arrivals(), notes.arrivals());
    let drain_deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < drain_deadline {
        let held = queued(&topic).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = (casts.arrivals(), notes.arrivals());
        if now != last {
            last = now;
            stable_since = Instant::now();
            continue;
        }
        match held {
            Some(0) => break,
            Some(_) => {}
            None if stable_since.elapsed() >= quiet => break,
            None => {}
        }
    }
    // What was lost and duplicated, counted once the drain is over.
    let [call_losses, cast_losses, note_losses] =
        [&calls, &casts, &notes].map(|t| t.lost_and_duplicated());
    if !cast_losses.0.is_empty() || !note_losses.0.is_empty() {
        // Where the lost ones are: still on a queue (a consumer that stopped taking
        // them) or nowhere (gone between the broker's confirm and the queue).
        eprintln!(
            "faults: something was lost; the run's queues at {} (name, type, ready, unacked, consumers):",
            since_start()
        );
        for line in list_queues(&topic).await.unwrap_or_default() {
            eprintln!("  {}", line.join("\t"));
        }
    }
    server.stop().await;
    server.wait().await.map_err(|e| e.to_string())?;
    listener.stop().await;
    let _ = listener.wait().await;
    server_transport.cleanup().await;
    client_transport.cleanup().await;
    // Its quorum queues and its fanout exchange are durable: they go with the run
    // (rabbitmqctl of RabbitMQ 3 has no command for an exchange).
    let fanout = format!(
        "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"{topic}_fanout\">>), false, <<\"faults\">>)."
    );
    let leftovers: Vec<(String, [String; 2])> = [
        topic.clone(),
        format!("{topic}.s1"),
        format!("{topic}.info"),
    ]
    .into_iter()
    .map(|q| (format!("queue {q}"), ["delete_queue".to_string(), q]))
    .chain([(
        format!("exchange {topic}_fanout"),
        ["eval".to_string(), fanout],
    )])
    .collect();
    for (what, command) in &leftovers {
        let deleted = tokio::process::Command::new("rabbitmqctl")
            .args(["-n", &node_name(1), "-q"])
            .args(command)
            .output()
            .await;
        if !deleted.is_ok_and(|o| o.status.success()) {
            eprintln!("faults: could not delete {what}");
        }
    }

    println!(
        "{bounces} node crashes (every {:.0} s, down {:.0} s each) over {:.0} s of load on {}; \
         quorum queues; call timeout {} s; a cast or notification is past its bound after {} s\n",
        args.interval + args.down,
        args.down,
        loaded.as_secs_f64(),
        server_transport.url().masked(),
        CALL_TIMEOUT.as_secs(),
        SEND_BOUND.as_secs()
    );
    println!(
        "| traffic | sent | confirmed / answered | delivered | lost | duplicated | failed with error | longest stall | past its bound |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    let mut clean = true;
    for (name, tally, at_least_once, (lost, duplicated)) in [
        ("calls", &calls, false, &call_losses),
        ("casts (at_least_once)", &casts, true, &cast_losses),
        ("notifications", &notes, true, &note_losses),
    ] {
        let hung = tally.hung.load(Ordering::Relaxed);
        clean &= (!at_least_once || lost.is_empty()) && hung == 0;
        let distinct = tally.received.lock().unwrap().len();
        println!(
            "| {name} | {} | {} | {distinct} | {} | {} | {} | {:.1} s | {} |",
            tally.sent.load(Ordering::Relaxed),
            tally.succeeded.load(Ordering::Relaxed),
            if at_least_once {
                lost.len().to_string()
            } else {
                "–".into()
            },
            if at_least_once {
                duplicated.to_string()
            } else {
                "–".into()
            },
            tally.failed.load(Ordering::Relaxed),
            tally.stalls.lock().unwrap().longest.as_secs_f64(),
            hung,
        );
    }
    for (name, (lost, _)) in [("casts", &cast_losses), ("notifications", &note_losses)] {
        let lost: Vec<String> = lost
            .iter()
            .take(10)
            .map(|(n, at)| format!("#{n} (confirmed at {:.1} s)", at.as_secs_f64()))
            .collect();
        if !lost.is_empty() {
            println!("\n{name} lost: {}", lost.join(", "));
        }
    }
    for (name, tally) in [
        ("calls", &calls),
        ("casts", &casts),
        ("notifications", &notes),
    ] {
        for error in tally.errors.lock().unwrap().iter() {
            println!("\n{name} failed with, for one: {error}");
        }
    }
    Ok(clean)
}
