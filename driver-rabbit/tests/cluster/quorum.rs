//! Quorum queues when a node is lost: every confirmed cast arrives, also when the
//! leader's node crashes while casts stream in.

use super::*;

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

    server.stop().await;
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

    server.stop().await;
    server.wait().await.unwrap();
    server_transport.cleanup().await;
    for transport in transports {
        transport.cleanup().await;
    }
    delete_quorum_leftovers(&topic);
}
