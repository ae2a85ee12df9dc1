//! Failover on a three-node RabbitMQ cluster (`scripts/services cluster`): a server and
//! a client on a multi-host URL, and behind HAProxy on a single-host one, while the node
//! each is connected to crashes (its Erlang VM killed), in turn and during a call; and
//! quorum queues (`rabbit_quorum_queue`, `rabbit_transient_quorum_queue`) keeping every
//! confirmed cast when a node is lost.
//!
//! The cluster is this binary's alone (other tests use the default broker), so every
//! connection and consumer on it is one of these tests'. They crash nodes, so they run
//! one at a time, and each leaves the three nodes running.
//!
//! Without the cluster these tests fail, naming the command that starts it; with
//! `MESSAGING_SKIP_CLUSTER=1` they are skipped.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use messaging_core::{
    Config, Context, Endpoint, RemoteError, RpcClient, RpcServer, Target, Transport,
};
use serde_json::{Value, json};
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// The three nodes, on the multi-host URL of the tests.
const NODES: [u16; 3] = [5681, 5682, 5683];
const HAPROXY: u16 = 5680;

/// How long a peer may take to be connected to a live node again: the configured
/// reconnect delay and retry intervals (below) are a few seconds; a node's crash closes
/// its sockets, so no heartbeat has to run out first.
const RECOVERY: Duration = Duration::from_secs(30);

/// How long a stream of casts may take, failovers included (they take seconds).
const CAST_BOUND: Duration = Duration::from_secs(90);

/// The quorum tests' exchange. With quorum queues the driver declares its exchanges
/// durable, and a durable `openstack` exchange would refuse the other tests' (and the
/// TLS tests') non-durable declaration of it: the broker keeps an exchange's flags.
const QUORUM_EXCHANGE: &str = "[DEFAULT]\ncontrol_exchange = omsg_quorum_tests\n";

/// Deletes what a quorum test leaves on the cluster: its durable quorum queues and its
/// durable fanout exchange (oslo keeps topic queues by design).
fn delete_quorum_leftovers(topic: &str) {
    for queue in [topic.to_string(), format!("{topic}.s1")] {
        ctl(&["delete_queue", &queue]);
    }
    ctl(&[
        "eval",
        &format!(
            "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"{topic}_fanout\">>), false, <<\"omsg\">>)."
        ),
    ]);
}

/// Short reconnect waits, so a test does not sit out oslo's default backoff.
const FAST_RECONNECT: &str = "[oslo_messaging_rabbit]\nkombu_reconnect_delay = 0.5\n\
    rabbit_retry_interval = 1\nrabbit_retry_backoff = 1\nrabbit_interval_max = 2\n\
    heartbeat_timeout_threshold = 10\n";

/// The cluster to this test alone, with its three nodes running; `None` (the test
/// is skipped) with `MESSAGING_SKIP_CLUSTER=1`.
async fn on_the_cluster() -> Option<tokio::sync::MutexGuard<'static, ()>> {
    if std::env::var("MESSAGING_SKIP_CLUSTER").is_ok_and(|v| v == "1") {
        eprintln!("skipped: MESSAGING_SKIP_CLUSTER=1");
        return None;
    }
    let alone = ONE_AT_A_TIME.lock().await;
    // HAProxy stays up while the tests crash nodes: it tells whether the cluster was
    // started at all. A node an earlier test left down is started again.
    require_cluster(&[HAPROXY]).await;
    all_nodes_up().await;
    require_cluster(&NODES).await;
    Some(alone)
}

/// Whether something accepts connections on `127.0.0.1:port`.
async fn answers(port: u16) -> bool {
    tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    .is_ok_and(|r| r.is_ok())
}

/// Panics, naming the command that starts the cluster, unless something answers on
/// each of `ports`.
async fn require_cluster(ports: &[u16]) {
    for &port in ports {
        assert!(
            answers(port).await,
            "the RabbitMQ test cluster does not answer on 127.0.0.1:{port}: start it with \
             `scripts/services cluster` (or set MESSAGING_SKIP_CLUSTER=1 to skip these tests)"
        );
    }
}

/// Runs `scripts/services <args>` (off the runtime's threads), returning its output.
async fn services(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/services");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = support::command(script, &args, None);
        eprintln!("scripts/services {}: {}", args.join(" "), out.trim());
        out
    })
    .await
    .expect("scripts/services ran")
}

/// Node `n` (1..3) crashes.
async fn crash(n: usize) {
    services(&["node-stop", &n.to_string()]).await;
}

/// Node `n` starts again and joins the cluster.
async fn restart(n: usize) {
    services(&["node-start", &n.to_string()]).await;
}

/// Every node runs (a failed test may have left one down).
async fn all_nodes_up() {
    services(&["cluster"]).await;
}

fn node_name(n: usize) -> String {
    // Asked once: `ctl` names nodes in polling loops.
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let host = HOST.get_or_init(|| {
        support::command("hostname", &["-s"], None)
            .trim()
            .to_string()
    });
    format!("omsg{n}@{host}")
}

/// `rabbitmqctl` against a running node of the cluster.
fn ctl(args: &[&str]) -> String {
    let mut last = String::new();
    for n in 1..=3 {
        let name = node_name(n);
        let mut all = vec!["-n", name.as_str(), "-q"];
        all.extend_from_slice(args);
        let out = std::process::Command::new("rabbitmqctl")
            .args(&all)
            .output()
            .expect("rabbitmqctl runs (scripts/services installs it)");
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
    }
    panic!("no node of the cluster answers rabbitmqctl {args:?}: {last}")
}

/// The node (1..3) named in an Erlang pid such as `<omsg2@vm.1699.1234.0>`.
fn node_of_pid(pid: &str) -> Option<usize> {
    let at = pid.find("omsg")? + 4;
    pid[at..at + 1].parse().ok()
}

/// The node of the consumer on the first queue whose name `matches`.
fn consumer_node(matches: impl Fn(&str) -> bool) -> Option<usize> {
    ctl(&[
        "list_consumers",
        "--no-table-headers",
        "queue_name",
        "channel_pid",
    ])
    .lines()
    .filter_map(|l| l.split_once('\t'))
    .find(|(queue, _)| matches(queue))
    .and_then(|(_, pid)| node_of_pid(pid))
}

/// Waits until a consumer on a queue that `matches` is on a node, and returns it.
async fn wait_for_consumer(what: &str, matches: impl Fn(&str) -> bool) -> usize {
    let deadline = Instant::now() + RECOVERY;
    loop {
        if let Some(node) = consumer_node(&matches) {
            return node;
        }
        assert!(Instant::now() < deadline, "no consumer for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn cluster_url(hosts: &[u16]) -> String {
    let hosts: Vec<String> = hosts
        .iter()
        .map(|p| format!("guest:guest@127.0.0.1:{p}"))
        .collect();
    format!("rabbit://{}/", hosts.join(","))
}

async fn transport(url: &str, ini: &str) -> Transport {
    let config = Config::from_ini_str(ini).expect("test configuration");
    support::registry()
        .transport(url, &config)
        .await
        .expect("rabbit transport to the cluster")
}

/// `echo(data)`, and `slow(data)` that answers after two seconds.
fn endpoint() -> Endpoint {
    support::echo_endpoint().method("slow", |_c: Context, a: Value| async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok::<_, RemoteError>(a.get("data").cloned().unwrap_or(Value::Null))
    })
}

async fn echo(client: &RpcClient, data: &str) -> messaging_core::Result<Value> {
    client
        .call::<_, Value>(&Context::new(), "echo", json!({ "data": data }))
        .await
}

/// Calls until one succeeds; returns how long that took. Panics after [`RECOVERY`].
async fn recovered(client: &RpcClient, since: Instant) -> Duration {
    // A request sent before the server consumes again is dropped unroutable, as in
    // oslo: probes wait a short while only.
    let client = client.clone().timeout(Duration::from_secs(2));
    loop {
        match echo(&client, "probe").await {
            Ok(v) => {
                assert_eq!(v, json!("probe"));
                return since.elapsed();
            }
            Err(e) => assert!(
                since.elapsed() < RECOVERY,
                "no call succeeded within {RECOVERY:?} of the failover; last: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// After a failover every call succeeds.
async fn every_call_succeeds(client: &RpcClient, round: &str) {
    for i in 0..20 {
        let data = format!("{round}-{i}");
        assert_eq!(
            echo(client, &data)
                .await
                .unwrap_or_else(|e| panic!("call {i} after {round}: {e}")),
            json!(data)
        );
    }
}

/// A server and a client (each with a transport of its own) on `url`.
async fn server_and_client(
    url: &str,
    ini: &str,
    topic: &str,
) -> (Transport, RpcServer, Transport, RpcClient) {
    let server_transport = transport(url, ini).await;
    let server = RpcServer::new(
        &server_transport,
        Target::topic(topic.to_string()).server("s1"),
    )
    .endpoint(endpoint())
    .start()
    .await
    .expect("server starts");
    let client_transport = transport(url, ini).await;
    let client = RpcClient::new(&client_transport, Target::topic(topic.to_string()))
        .timeout(Duration::from_secs(10));
    assert_eq!(echo(&client, "first").await.unwrap(), json!("first"));
    (server_transport, server, client_transport, client)
}

/// The failover scenario: the server's node crashes, then the client's, then the
/// server's again during a call. Each time the peers reconnect to a live node and
/// every call made after the failover succeeds.
async fn failover_rounds(url: &str, ini: &str, topic: &str) {
    let (server_transport, server, client_transport, client) =
        server_and_client(url, ini, topic).await;
    let server_queue = format!("{topic}.s1");
    let serving = |q: &str| q == server_queue;
    let replies = |q: &str| q.starts_with("reply_");

    // 1. The server's node.
    let node = wait_for_consumer("the server", serving).await;
    let crashed = Instant::now();
    crash(node).await;
    let took = recovered(&client, crashed).await;
    eprintln!("server's node omsg{node} crashed: calls succeed again after {took:?}");
    every_call_succeeds(&client, "server failover").await;
    let now = wait_for_consumer("the server", serving).await;
    assert_ne!(now, node, "the server consumes from a live node");
    restart(node).await;

    // 2. The client's (its reply queue's consumer).
    let node = wait_for_consumer("the client's replies", replies).await;
    let crashed = Instant::now();
    crash(node).await;
    let took = recovered(&client, crashed).await;
    eprintln!("client's node omsg{node} crashed: calls succeed again after {took:?}");
    every_call_succeeds(&client, "client failover").await;
    restart(node).await;

    // 3. The server's node again, while a call runs on it: that call ends within its
    // timeout (with its reply or an error), and the calls after it succeed.
    let node = wait_for_consumer("the server", serving).await;
    let slow_client = client.clone().timeout(Duration::from_secs(6));
    let in_flight = tokio::spawn(async move {
        let started = Instant::now();
        let outcome = slow_client
            .call::<_, Value>(&Context::new(), "slow", json!({"data": "slow"}))
            .await;
        (outcome, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    let crashed = Instant::now();
    crash(node).await;
    let (outcome, took) = in_flight.await.unwrap();
    eprintln!("call in flight during the crash of omsg{node}: {outcome:?} after {took:?}");
    assert!(
        took < Duration::from_secs(8),
        "the call in flight ended within its timeout"
    );
    if let Ok(v) = outcome {
        assert_eq!(v, json!("slow"));
    }
    let took = recovered(&client, crashed).await;
    eprintln!("server's node omsg{node} crashed during a call: calls succeed again after {took:?}");
    every_call_succeeds(&client, "failover during a call").await;
    restart(node).await;
    every_call_succeeds(&client, "the node's return").await;

    server.stop().await.unwrap();
    server.wait().await.unwrap();
    server_transport.cleanup().await;
    client_transport.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_with_a_multi_host_url() {
    let Some(_alone) = on_the_cluster().await else {
        return;
    };
    failover_rounds(
        &cluster_url(&NODES),
        FAST_RECONNECT,
        &support::unique("failover"),
    )
    .await;
}

/// The same behind HAProxy (active/backup) with a single-host URL: the crashed node's
/// connections are cut and the peers reconnect through the proxy to a backup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_through_haproxy() {
    let Some(_alone) = on_the_cluster().await else {
        return;
    };
    failover_rounds(
        &cluster_url(&[HAPROXY]),
        FAST_RECONNECT,
        &support::unique("haproxy"),
    )
    .await;
}

/// Numbered casts with `at_least_once`, one every 5 ms, from a task of their own, with
/// their progress shared so that a stuck cast can be reported.
struct CastStream {
    progress: Arc<StdMutex<CastProgress>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct CastProgress {
    confirmed: Vec<u64>,
    failed: Vec<(u64, String)>,
    /// The cast under way and when it started.
    current: Option<(u64, Instant)>,
    /// The longest a cast took.
    longest: Duration,
}

impl CastStream {
    /// Casts `count(n)` with `caster` for `count` numbers from `first` on.
    fn start(caster: RpcClient, first: u64, count: u64) -> CastStream {
        let progress: Arc<StdMutex<CastProgress>> = Arc::default();
        let shared = progress.clone();
        let task = tokio::spawn(async move {
            for n in first..first + count {
                let started = Instant::now();
                shared.lock().unwrap().current = Some((n, started));
                let outcome = caster
                    .cast(&Context::new(), "count", json!({ "n": n }))
                    .await;
                {
                    let mut p = shared.lock().unwrap();
                    p.current = None;
                    p.longest = p.longest.max(started.elapsed());
                    match outcome {
                        Ok(()) => p.confirmed.push(n),
                        Err(e) => p.failed.push((n, e.to_string())),
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        CastStream { progress, task }
    }

    /// How many casts were confirmed so far.
    fn confirmed(&self) -> usize {
        self.progress.lock().unwrap().confirmed.len()
    }

    /// Waits for the last cast; panics, saying which cast waits since when, when that
    /// takes longer than `within`. Returns the confirmed and the failed casts.
    async fn finish(self, within: Duration, what: &str) -> (Vec<u64>, Vec<(u64, String)>) {
        let mut task = self.task;
        if tokio::time::timeout(within, &mut task).await.is_err() {
            task.abort();
            let p = self.progress.lock().unwrap();
            let stuck = p.current.map_or("none".to_string(), |(n, since)| {
                format!("cast {n}, waiting for {:?}", since.elapsed())
            });
            panic!(
                "{what}: the casts did not end within {within:?}: {} confirmed, {} failed, \
                 stuck: {stuck} (a send that never returns: see the driver's warnings)",
                p.confirmed.len(),
                p.failed.len()
            );
        }
        let p = self.progress.lock().unwrap();
        eprintln!(
            "{what}: {} casts confirmed, {} failed, the longest took {:?}",
            p.confirmed.len(),
            p.failed.len(),
            p.longest
        );
        (p.confirmed.clone(), p.failed.clone())
    }
}

/// An endpoint whose `count(n)` records `n`, and what it recorded.
fn counting_endpoint() -> (Endpoint, Arc<StdMutex<Vec<u64>>>) {
    let received: Arc<StdMutex<Vec<u64>>> = Arc::default();
    let seen = received.clone();
    let counting = endpoint().method("count", move |_c: Context, a: Value| {
        let seen = seen.clone();
        async move {
            seen.lock()
                .unwrap()
                .push(a["n"].as_u64().unwrap_or(u64::MAX));
            Ok::<_, RemoteError>(Value::Null)
        }
    });
    (counting, received)
}

/// Waits until every confirmed cast arrived (or [`RECOVERY`] passed); returns the
/// missing ones.
async fn missing_casts(confirmed: &[u64], received: &StdMutex<Vec<u64>>) -> Vec<u64> {
    let deadline = Instant::now() + RECOVERY;
    loop {
        let got: HashSet<u64> = received.lock().unwrap().iter().copied().collect();
        let missing: Vec<u64> = confirmed
            .iter()
            .copied()
            .filter(|n| !got.contains(n))
            .collect();
        if missing.is_empty() || Instant::now() >= deadline {
            return missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The node (1..3) of the leader of quorum queue `queue`.
fn leader_of(queue: &str) -> usize {
    ctl(&["list_queues", "--no-table-headers", "name", "leader"])
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .find(|(q, _)| *q == queue)
        .and_then(|(_, leader)| node_of_pid(leader))
        .unwrap_or_else(|| panic!("quorum queue {queue} has a leader"))
}

/// Quorum queues for topics, replies and fanouts: casts sent with `at_least_once`
/// while the leader of the server's queue crashes are all delivered (duplicates
/// dropped by `_unique_id`), and calls go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_queues_lose_no_confirmed_cast_when_a_node_is_lost() {
    let Some(_alone) = on_the_cluster().await else {
        return;
    };
    let ini = format!(
        "{QUORUM_EXCHANGE}{FAST_RECONNECT}rabbit_quorum_queue = true\n\
         rabbit_transient_quorum_queue = true\n"
    );
    let url = cluster_url(&NODES);
    let topic = support::unique("quorum");

    let (counting, received) = counting_endpoint();
    let server_transport = transport(&url, &ini).await;
    let server = RpcServer::new(&server_transport, Target::topic(topic.clone()).server("s1"))
        .endpoint(counting)
        .start()
        .await
        .expect("server starts");
    let queue_type = ctl(&["list_queues", "--no-table-headers", "name", "type"]);
    assert!(
        queue_type
            .lines()
            .any(|l| l.split('\t').collect::<Vec<_>>() == [topic.as_str(), "quorum"]),
        "the topic queue is a quorum queue: {queue_type}"
    );
    let client_transport = transport(&url, &ini).await;
    let caster = RpcClient::new(&client_transport, Target::topic(topic.clone()))
        .at_least_once(true)
        .timeout(Duration::from_secs(10));
    let leader = leader_of(&topic);

    const CASTS: u64 = 600;
    let sending = CastStream::start(caster.clone(), 0, CASTS);
    tokio::time::sleep(Duration::from_millis(800)).await;
    eprintln!(
        "quorum: crashing omsg{leader}, the leader of {topic}, after {} confirmed casts",
        sending.confirmed()
    );
    crash(leader).await;
    let (confirmed, failed) = sending.finish(CAST_BOUND, "quorum").await;
    eprintln!(
        "quorum: leader omsg{leader} crashed during {CASTS} casts: {} confirmed, {} failed {:?}",
        confirmed.len(),
        failed.len(),
        failed.iter().take(3).collect::<Vec<_>>()
    );
    // Every confirmed cast arrives.
    let missing = missing_casts(&confirmed, &received).await;
    assert!(missing.is_empty(), "confirmed casts lost: {missing:?}");
    assert!(
        failed.is_empty(),
        "at-least-once casts retry across the failover: {failed:?}"
    );
    let got = received.lock().unwrap().clone();
    let distinct: HashSet<u64> = got.iter().copied().collect();
    eprintln!(
        "quorum: {} delivered, {} distinct, {} duplicates",
        got.len(),
        distinct.len(),
        got.len() - distinct.len()
    );
    // Calls, with their reply queue a quorum queue too, go on.
    let client = RpcClient::new(&client_transport, Target::topic(topic.clone()))
        .timeout(Duration::from_secs(10));
    let took = recovered(&client, Instant::now()).await;
    eprintln!("quorum: a call after the crash took {took:?}");
    every_call_succeeds(&client, "quorum failover").await;
    restart(leader).await;
    every_call_succeeds(&client, "quorum node's return").await;

    server.stop().await.unwrap();
    server.wait().await.unwrap();
    server_transport.cleanup().await;
    client_transport.cleanup().await;
    delete_quorum_leftovers(&topic);
}

/// The leader's node of a quorum queue crashes while casts stream into it, from a
/// sender already connected and from senders that connect to a live node right after
/// the crash, one every 100 ms. On RabbitMQ before 3.12.5 a
/// channel whose first publish to the queue comes before the queue's record names the
/// new leader has every later publish to that queue refused (nacked) for as long as
/// the old leader's node stays down, even once a new leader runs; a channel opened
/// later is accepted. The driver retires a channel that was refused, so every cast
/// ends, confirmed, and arrives; before it did, they were published again on the same
/// channel and never returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn casts_go_on_when_their_channel_first_meets_the_queue_after_its_leader_crashed() {
    let Some(_alone) = on_the_cluster().await else {
        return;
    };
    // No reconnect delay: the sender publishes again as soon as it has a connection.
    let ini = &format!(
        "{QUORUM_EXCHANGE}[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\n\
         rabbit_transient_quorum_queue = true\nkombu_reconnect_delay = 0\n\
         rabbit_retry_interval = 1\nrabbit_retry_backoff = 1\nrabbit_interval_max = 2\n\
         heartbeat_timeout_threshold = 10\n"
    );
    let topic = support::unique("stale");
    let (counting, received) = counting_endpoint();
    let server_transport = transport(&cluster_url(&NODES), ini).await;
    let server = RpcServer::new(&server_transport, Target::topic(topic.clone()).server("s1"))
        .endpoint(counting)
        .start()
        .await
        .expect("server starts");
    let leader = leader_of(&topic);
    let live: Vec<u16> = (1..=3)
        .filter(|&n| n != leader)
        .map(|n| NODES[n - 1])
        .collect();
    let caster = |transport: &Transport| {
        RpcClient::new(transport, Target::topic(topic.clone()))
            .at_least_once(true)
            .timeout(Duration::from_secs(10))
    };
    // A sender already streaming, connected to any node of the three (the driver
    // shuffles a URL's hosts): on the leader's, it reconnects to another at once.
    let first_transport = transport(&cluster_url(&NODES), ini).await;
    let mut streams = vec![CastStream::start(caster(&first_transport), 0, 1500)];
    let mut transports = vec![first_transport];
    tokio::time::sleep(Duration::from_secs(1)).await;
    eprintln!(
        "stale leader: crashing omsg{leader}, the leader of {topic}, after {} confirmed casts",
        streams[0].confirmed()
    );
    let crashing = tokio::spawn(crash(leader));
    let killed = Instant::now();
    while answers(NODES[leader - 1]).await {
        assert!(killed.elapsed() < RECOVERY, "omsg{leader} does not go down");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for k in 1..=6u64 {
        let fresh = transport(&cluster_url(&live), ini).await;
        streams.push(CastStream::start(caster(&fresh), k * 100_000, 300));
        transports.push(fresh);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    crashing.await.expect("the crash");
    // The crashed node stays down until every cast has ended: a refused channel
    // recovers when the old leader's node comes back, which would hide the fault.
    let mut confirmed = Vec::new();
    for (k, stream) in streams.into_iter().enumerate() {
        let (ok, failed) = stream
            .finish(CAST_BOUND, &format!("stale leader, sender {k}"))
            .await;
        assert!(
            failed.is_empty(),
            "at-least-once casts retry across the failover: {:?}",
            failed.iter().take(3).collect::<Vec<_>>()
        );
        confirmed.extend(ok);
    }
    assert_eq!(confirmed.len(), 1500 + 6 * 300, "every cast confirmed");
    let missing = missing_casts(&confirmed, &received).await;
    assert!(missing.is_empty(), "confirmed casts lost: {missing:?}");
    restart(leader).await;

    server.stop().await.unwrap();
    server.wait().await.unwrap();
    server_transport.cleanup().await;
    for transport in transports {
        transport.cleanup().await;
    }
    delete_quorum_leftovers(&topic);
}
