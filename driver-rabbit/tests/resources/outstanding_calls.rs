//! Many calls outstanding from one client at once keep the memory bounded, also
//! over a second round.

use super::*;

const CALLS: usize = 10_000;
/// Bound on the heap per outstanding call (the calling task included): about 7 KiB
/// measured (16 KiB before each pending reply's channel carried its items boxed); the
/// heap is the same from run to run, so twice that is ample.
const MAX_HEAP_KIB_PER_OUTSTANDING_CALL: u64 = 14;
/// Bound on the peak RSS growth of a round per call: about 13 KiB measured (the
/// server's draining included), three times that.
const MAX_PEAK_RSS_KIB_PER_CALL: u64 = 40;
/// What the heap may keep after a round more than after the previous one: at most
/// 1.3 MiB measured (capacities settling); a leak of 420 bytes per call exceeds it.
const MAX_HEAP_KEPT_KIB: u64 = 4 * 1024;

/// 10,000 calls outstanding from one client at once; every one completes with its
/// own result, memory grows by some KiB per outstanding call, and a second round
/// keeps nothing more and does not raise the peak RSS again.
///
/// The server's executor allows 64 requests at once (`executor_thread_pool_size`),
/// so 10,000 calls cannot all be held inside an endpoint. Instead the server is
/// stopped while the calls are sent: its queue `<topic>` stays and holds the
/// requests, which the broker counts; once it shows all 10,000 (every request
/// published and confirmed, none answered) and the 10,000 calling tasks are all
/// still waiting, the client tracks 10,000 pending replies. Then the server starts
/// again and answers them, 64 at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_outstanding_calls_keep_memory_bounded() {
    let _serial = SERIAL.lock().await;
    let server_transport = support::transport().await;
    let transport = support::transport().await;
    let topic = support::unique("res_calls");
    let server = support::echo_server(&server_transport, &topic).await;
    let client =
        RpcClient::new(&transport, Target::topic(topic.clone())).timeout(Duration::from_secs(300));
    // Connections, channels and the reply queue exist before the first measurement.
    let warm: i64 = client
        .call(&Context::new(), "echo", json!({"data": -1}))
        .await
        .unwrap();
    assert_eq!(warm, -1);
    stop(&server).await;

    struct Round {
        rss_start: u64,
        heap_start: u64,
        heap_outstanding: u64,
        peak: u64,
        heap_after: u64,
    }
    let mut rounds: Vec<Round> = Vec::new();
    for round in 1..=2 {
        trim();
        let (rss_start, heap_start) = (rss(), heap());
        let started = Instant::now();
        let peak = Peak::start();
        let waiting = Arc::new(AtomicUsize::new(0));
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..CALLS {
            let client = client.clone();
            let waiting = waiting.clone();
            calls.spawn(async move {
                waiting.fetch_add(1, Ordering::Relaxed);
                let result = client
                    .call::<_, Value>(&Context::new(), "echo", json!({"data": i}))
                    .await;
                waiting.fetch_sub(1, Ordering::Relaxed);
                (i, result)
            });
        }
        let mut queued = 0;
        let limit = Instant::now() + Duration::from_secs(60);
        while queued < CALLS as u64 {
            assert!(
                Instant::now() < limit,
                "round {round}: only {queued} requests reached {topic}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            queued = queue_counts(&topic, &["messages"])[0];
        }
        assert_eq!(queued, CALLS as u64, "round {round}: one request per call");
        assert_eq!(
            waiting.load(Ordering::Relaxed),
            CALLS,
            "round {round}: every call still waits for its reply"
        );
        let (rss_outstanding, heap_outstanding) = (rss(), heap());
        let sent = started.elapsed();

        server.start().await.unwrap();
        let mut answered = vec![false; CALLS];
        while let Some(joined) = calls.join_next().await {
            let (i, result) = joined.expect("a calling task");
            assert_eq!(result.unwrap(), json!(i), "the reply of call {i}");
            assert!(!std::mem::replace(&mut answered[i], true));
        }
        assert!(answered.iter().all(|a| *a));
        let answered_in = started.elapsed() - sent;
        stop(&server).await;
        assert_eq!(queue_counts(&topic, &["messages"])[0], 0);
        let peak = peak.finish();
        let rss_after = rss();
        // What the round kept, once everything it started has finished.
        let mut heap_after = heap();
        if let Some(first) = rounds.first() {
            let settle = Instant::now();
            while heap_after > first.heap_after + MAX_HEAP_KEPT_KIB
                && settle.elapsed() < Duration::from_secs(5)
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
                heap_after = heap();
            }
        }
        eprintln!(
            "resources: {CALLS} outstanding calls (round {round}): rss before {} MB, \
             with all outstanding {} MB, peak {} MB, after {} MB; heap before {} MB, \
             with all outstanding {} MB ({:.1} KiB per call), after {} MB; \
             sent in {:.1} s, answered in {:.1} s",
            mib(rss_start),
            mib(rss_outstanding),
            mib(peak),
            mib(rss_after),
            mib(heap_start),
            mib(heap_outstanding),
            heap_outstanding.saturating_sub(heap_start) as f64 / CALLS as f64,
            mib(heap_after),
            sent.as_secs_f64(),
            answered_in.as_secs_f64(),
        );
        rounds.push(Round {
            rss_start,
            heap_start,
            heap_outstanding,
            peak,
            heap_after,
        });
    }

    for (n, r) in rounds.iter().enumerate() {
        let heap_per_call = r.heap_outstanding.saturating_sub(r.heap_start) / CALLS as u64;
        assert!(
            heap_per_call < MAX_HEAP_KIB_PER_OUTSTANDING_CALL,
            "round {}: {heap_per_call} KiB of heap per outstanding call",
            n + 1
        );
        let rss_per_call = r.peak.saturating_sub(r.rss_start) / CALLS as u64;
        assert!(
            rss_per_call < MAX_PEAK_RSS_KIB_PER_CALL,
            "round {}: peak RSS {rss_per_call} KiB per call",
            n + 1
        );
    }
    let [first, second] = &rounds[..] else {
        unreachable!()
    };
    assert!(
        second.heap_after <= first.heap_after + MAX_HEAP_KEPT_KIB,
        "the second round kept {} MB more heap",
        mib(second.heap_after - first.heap_after)
    );
    // The RSS, allocator and all: the second peak within a quarter of the first
    // round's growth of the first peak (measured: 3 to 17 MB above it, on a growth of
    // 120 to 135 MB; glibc's fragmentation, as the heap shows).
    let slack = first.peak.saturating_sub(first.rss_start) / 4;
    assert!(
        second.peak <= first.peak + slack,
        "the second round raised the peak RSS from {} to {} MB",
        mib(first.peak),
        mib(second.peak)
    );

    delete_service_queues(&topic, &["s1"]).await;
    transport.cleanup().await;
    server_transport.cleanup().await;
}
