//! A server with many requests queued for it holds only its prefetch window of them.

use super::*;

const QUEUED: usize = 1_000;
/// The server's `rabbit_qos_prefetch_count` (oslo's default, 0, means no limit).
const PREFETCH: u64 = 50;
/// oslo's `executor_thread_pool_size`, the default limit of requests run at once.
const EXECUTOR: u64 = 64;

/// A server whose handlers are all busy while 1,000 requests wait for it: with a
/// prefetch count set, the requests wait on the broker, not in the server's memory
/// (the server holds at most its 64 running requests, one waiting for the executor,
/// a prefetch count of received ones waiting to be taken and the unacknowledged
/// prefetch window); once the handlers are released, every request is handled
/// exactly once. Without a prefetch count (0, oslo's default) a server takes all
/// the requests there are, as oslo's does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_a_thousand_queued_requests_stays_bounded() {
    let _serial = SERIAL.lock().await;
    let server_transport =
        support::transport_with("", &format!("?rabbit_qos_prefetch_count={PREFETCH}")).await;
    let transport = support::transport().await;
    let topic = support::unique("res_queued");

    let (open, gate) = tokio::sync::watch::channel(false);
    let entered = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicUsize::new(0));
    let most_running = Arc::new(AtomicUsize::new(0));
    let handled = Arc::new(Mutex::new(vec![0u32; QUEUED]));
    let endpoint = {
        let (entered, running, most_running, handled) = (
            entered.clone(),
            running.clone(),
            most_running.clone(),
            handled.clone(),
        );
        Endpoint::new().method("work", move |_c: Context, a: Map<String, Value>| {
            let mut gate = gate.clone();
            let (entered, running, most_running, handled) = (
                entered.clone(),
                running.clone(),
                most_running.clone(),
                handled.clone(),
            );
            async move {
                entered.fetch_add(1, Ordering::SeqCst);
                most_running
                    .fetch_max(running.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                let _ = gate.wait_for(|open| *open).await;
                let id = a["id"].as_u64().expect("an id") as usize;
                handled.lock().unwrap()[id] += 1;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, RemoteError>(Value::Null)
            }
        })
    };
    let server = RpcServer::new(&server_transport, Target::topic(topic.clone()).server("s1"))
        .endpoint(endpoint)
        .start()
        .await
        .expect("server starts");
    let client = RpcClient::new(&transport, Target::topic(topic.clone()));
    // The client's connections exist before the first measurement.
    client
        .prepare()
        .topic(support::unique("res_nobody"))
        .cast(&Context::new(), "work", json!({}))
        .await
        .unwrap();

    let started = Instant::now();
    let (before, heap_before) = (rss(), heap());
    let peak = Peak::start();
    let sent: Vec<_> = futures::stream::iter(0..QUEUED)
        .map(|id| {
            let client = client.clone();
            async move {
                client
                    .cast(&Context::new(), "work", json!({"id": id}))
                    .await
            }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    assert!(sent.iter().all(Result::is_ok), "every cast is sent");
    eventually(Duration::from_secs(30), "the executor fills up", || {
        entered.load(Ordering::SeqCst) == EXECUTOR as usize
    })
    .await;
    // Whatever the server would still take, it takes within a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let [ready, unacked] = queue_counts(&topic, &["messages_ready", "messages_unacknowledged"])[..]
    else {
        unreachable!()
    };
    let held = QUEUED as u64 - ready;
    let (queued_rss, queued_heap) = (rss(), heap());
    eprintln!(
        "resources: {QUEUED} queued requests: {ready} ready on the broker, {unacked} \
         unacknowledged, {held} in the server ({} running); rss before {} MB, \
         with the requests queued {} MB; heap before {} MB, with the requests queued {} MB",
        entered.load(Ordering::SeqCst),
        mib(before),
        mib(queued_rss),
        mib(heap_before),
        mib(queued_heap),
    );
    assert_eq!(entered.load(Ordering::SeqCst), EXECUTOR as usize);
    assert!(
        unacked <= PREFETCH,
        "{unacked} unacknowledged, prefetch {PREFETCH}"
    );
    // Running, one taken and waiting for the executor, at most a prefetch count of
    // acknowledged requests waiting to be taken, and the unacknowledged window.
    let most_held = EXECUTOR + 1 + 2 * PREFETCH;
    assert!(
        held <= most_held,
        "the server took {held} of {QUEUED} requests while busy (at most {most_held} expected)"
    );

    open.send(true).unwrap();
    eventually(Duration::from_secs(60), "every request handled", || {
        handled.lock().unwrap().iter().sum::<u32>() as usize == QUEUED
    })
    .await;
    // Nothing comes twice, even a little later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let handled = handled.lock().unwrap().clone();
    let twice: Vec<usize> = (0..QUEUED).filter(|i| handled[*i] != 1).collect();
    assert!(twice.is_empty(), "handled other than once: {twice:?}");
    assert_eq!(entered.load(Ordering::SeqCst), QUEUED);
    assert!(most_running.load(Ordering::SeqCst) <= EXECUTOR as usize);
    assert_eq!(queue_counts(&topic, &["messages"])[0], 0);
    let peak = peak.finish();
    let after = rss();
    eprintln!(
        "resources: {QUEUED} queued requests: rss before {} MB, peak {} MB, after {} MB; \
         handled in {:.1} s",
        mib(before),
        mib(peak),
        mib(after),
        started.elapsed().as_secs_f64()
    );
    // 1 to 2.2 MB measured, whichever test ran before; what matters more is that the
    // server does not hold all the requests (above).
    assert!(
        peak.saturating_sub(before) < 8 * 1024,
        "peak RSS grew by {} MB",
        mib(peak - before)
    );

    stop(&server).await;
    delete_service_queues(&topic, &["s1"]).await;
    transport.cleanup().await;
    server_transport.cleanup().await;
}
