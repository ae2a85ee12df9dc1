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

#[path = "../support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use messaging_core::{
    Config, Context, Endpoint, RemoteError, RpcClient, RpcServer, Target, Transport,
};
use serde_json::{Value, json};
use tokio::sync::Mutex;

mod failover;
mod quorum;

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
