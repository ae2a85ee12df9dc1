//! Resources stay bounded on the real RabbitMQ: 10,000 outstanding calls from one
//! client and a server with 1,000 queued requests keep the memory of the process
//! bounded (the peak RSS is printed), and once clients and servers have stopped
//! gracefully no reply or fanout queue is left on the broker.
//!
//! The RSS is the whole process's, so the tests of this binary run one at a time.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use messaging_core::wire::Request;
use messaging_core::{Context, Endpoint, RemoteError, RpcClient, RpcServer, Target};
use serde_json::{Map, Value, json};

/// One test at a time: they measure the RSS of the whole process.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Counts the bytes the process has allocated and not freed: unlike the RSS, which
/// depends on how the allocator keeps and reuses freed memory, this is the same from
/// run to run, so bounds on it can be tight.
struct CountingAllocator;

static HEAP: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call goes to the system allocator unchanged; only sizes are counted.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        HEAP.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        HEAP.fetch_add(size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { std::alloc::System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// The bytes allocated and not freed, in KiB.
fn heap() -> u64 {
    (HEAP.load(Ordering::Relaxed).max(0) / 1024) as u64
}

/// Gives the memory glibc keeps after frees back to the system, so that rounds start
/// from comparable RSS (without it a second round's RSS grows by the allocator's
/// fragmentation, not by anything kept: the heap shows that).
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: glibc's malloc_trim only releases free memory.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// A field of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

fn rss() -> u64 {
    status_kib("VmRSS")
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// The highest RSS over a stretch of the test: `VmHWM` after resetting it (writing 5 to
/// `/proc/self/clear_refs`), and, where that reset is not allowed, the highest of
/// `VmRSS` sampled every 2 ms.
struct Peak {
    hwm_reset: bool,
    stop: Arc<AtomicBool>,
    sampled: Arc<AtomicU64>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

impl Peak {
    fn start() -> Peak {
        let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        let stop = Arc::new(AtomicBool::new(false));
        let sampled = Arc::new(AtomicU64::new(rss()));
        let sampler = {
            let (stop, sampled) = (stop.clone(), sampled.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    sampled.fetch_max(rss(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        Peak {
            hwm_reset,
            stop,
            sampled,
            sampler: Some(sampler),
        }
    }

    /// The peak so far, in KiB.
    fn read(&self) -> u64 {
        let sampled = self.sampled.load(Ordering::Relaxed).max(rss());
        if self.hwm_reset {
            sampled.max(status_kib("VmHWM"))
        } else {
            sampled
        }
    }

    fn finish(mut self) -> u64 {
        let peak = self.read();
        self.stop.store(true, Ordering::Relaxed);
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
        peak
    }
}

/// A column of `rabbitmqctl list_queues` for `queue` (panics if the queue is missing).
fn queue_counts(queue: &str, columns: &[&str]) -> Vec<u64> {
    let line = support::queue_info(queue, columns).unwrap_or_else(|| panic!("queue {queue}"));
    line.split('\t')
        .skip(1)
        .map(|v| v.parse().unwrap_or_else(|_| panic!("a count: {line}")))
        .collect()
}

/// Polls `check` every 100 ms until it holds, for at most `limit`.
async fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stop(server: &RpcServer) {
    server.stop().await.unwrap();
    server.wait().await.unwrap();
}

/// Deletes the queues `<topic>` and `<topic>.<server>`, which stay on the broker after
/// their servers stop (as oslo's do), so the tests leave nothing behind.
async fn delete_service_queues(topic: &str, servers: &[&str]) {
    let connection = support::raw().await;
    let channel = connection.create_channel().await.unwrap();
    let names =
        std::iter::once(topic.to_string()).chain(servers.iter().map(|s| format!("{topic}.{s}")));
    for name in names {
        channel
            .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
            .await
            .unwrap();
    }
    let _ = connection.close(200, "OK".into()).await;
}

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

/// An endpoint with `echo(data)` and `note()`, which counts the fanout casts.
fn noting_endpoint(notes: Arc<AtomicUsize>) -> Endpoint {
    support::echo_endpoint().method("note", move |_c: Context, _a: Value| {
        let notes = notes.clone();
        async move {
            notes.fetch_add(1, Ordering::SeqCst);
            Ok::<_, RemoteError>(Value::Null)
        }
    })
}

fn queue_names() -> Vec<String> {
    support::rabbitmqctl(&["list_queues", "-q", "--no-table-headers", "name"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Two servers (each with its queues `<topic>`, `<topic>.<server>` and a fanout
/// queue `<topic>_fanout_<id>`) and three clients (each with a reply queue
/// `reply_<id>`) calling and casting to all of them; once the servers are stopped
/// and waited for and the clients' transports cleaned up, no reply queue of the
/// clients and no fanout queue of the topic is left, and the fanout exchange (auto
/// delete) is gone. The third client's transport is only dropped, not cleaned up:
/// its reply queue goes too, a moment later (its consumer closes itself in the
/// background). `<topic>` and `<topic>.<server>` stay, as in oslo: they are declared
/// neither auto-delete nor exclusive, so that requests wait for a restarting server;
/// the test deletes them itself.
///
/// The reply queues are recognised by name: a queue of the test's own, bound to the
/// topic's routing keys, receives a copy of every request, whose `_reply_q` names the
/// queue of the client that sent it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reply_or_fanout_queue_is_left_after_a_graceful_stop() {
    let _serial = SERIAL.lock().await;
    let topic = support::unique("res_leftover");
    let fanout_prefix = format!("{topic}_fanout_");
    let server_names = ["s1", "s2"];
    let mut servers = Vec::new();
    let mut notes = Vec::new();
    let mut server_transports = Vec::new();
    for name in server_names {
        let transport = support::transport().await;
        let noted = Arc::new(AtomicUsize::new(0));
        let server = RpcServer::new(&transport, Target::topic(topic.clone()).server(name))
            .endpoint(noting_endpoint(noted.clone()))
            .start()
            .await
            .expect("server starts");
        servers.push(server);
        notes.push(noted);
        server_transports.push(transport);
    }

    let connection = support::raw().await;
    let channel = connection.create_channel().await.unwrap();
    let peek = support::unique("res_peek");
    channel
        .queue_declare(
            peek.as_str().into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    for key in [topic.clone(), format!("{topic}.s2")] {
        channel
            .queue_bind(
                peek.as_str().into(),
                "openstack".into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }

    const CLIENTS: usize = 3;
    let mut client_transports = Vec::new();
    let ctx = Context::new();
    for c in 0..CLIENTS {
        let transport = support::transport().await;
        let client = RpcClient::new(&transport, Target::topic(topic.clone()))
            .timeout(Duration::from_secs(30));
        for i in 0..5 {
            let data = json!(format!("{c}/{i}"));
            let got: Value = client
                .call(&ctx, "echo", json!({ "data": data }))
                .await
                .unwrap();
            assert_eq!(got, data);
            let got: Value = client
                .prepare()
                .server("s2")
                .call(&ctx, "echo", json!({ "data": data }))
                .await
                .unwrap();
            assert_eq!(got, data);
        }
        client
            .prepare()
            .fanout(true)
            .cast(&ctx, "note", json!({}))
            .await
            .unwrap();
        client_transports.push(transport);
    }
    eventually(
        Duration::from_secs(10),
        "every server gets every fanout cast",
        || notes.iter().all(|n| n.load(Ordering::SeqCst) == CLIENTS),
    )
    .await;

    // The reply queue of each client, named by the requests the peek queue received.
    let mut reply_queues = vec![HashSet::new(); CLIENTS];
    let mut requests = 0;
    while let Some(message) = channel
        .basic_get(peek.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        let request = Request::decode(&message.delivery.data).expect("a request");
        let reply = request.reply.expect("a call has a reply address");
        let data = request.args["data"].as_str().expect("data").to_string();
        let client: usize = data[..data.find('/').unwrap()].parse().unwrap();
        reply_queues[client].insert(reply.reply_q);
        requests += 1;
    }
    assert_eq!(requests, CLIENTS * 10, "the peek queue saw every call");
    let reply_queues: Vec<String> = reply_queues
        .into_iter()
        .map(|names| {
            assert_eq!(names.len(), 1, "one reply queue per client transport");
            names.into_iter().next().unwrap()
        })
        .collect();

    let during = queue_names();
    for q in &reply_queues {
        assert!(during.contains(q), "reply queue {q} exists while in use");
    }
    let fanout_during = during
        .iter()
        .filter(|q| q.starts_with(&fanout_prefix))
        .count();
    assert_eq!(fanout_during, 2, "one fanout queue per server:\n{during:?}");

    // Graceful shutdown: servers stop and drain, transports clean up; the last client
    // is only dropped.
    for server in &servers {
        stop(server).await;
    }
    drop(client_transports.pop());
    for transport in client_transports.iter().chain(&server_transports) {
        transport.cleanup().await;
    }

    let mut after = queue_names();
    let left = |after: &[String]| -> Vec<String> {
        after
            .iter()
            .filter(|q| reply_queues.contains(*q) || q.starts_with(&fanout_prefix))
            .cloned()
            .collect()
    };
    let cleaned_up_left: Vec<String> = left(&after)
        .into_iter()
        .filter(|q| *q != reply_queues[CLIENTS - 1])
        .collect();
    assert!(
        cleaned_up_left.is_empty(),
        "left on the broker after a graceful stop: {cleaned_up_left:?}"
    );
    let limit = Instant::now() + Duration::from_secs(10);
    while !left(&after).is_empty() && Instant::now() < limit {
        tokio::time::sleep(Duration::from_millis(200)).await;
        after = queue_names();
    }
    let kept: Vec<&String> = after
        .iter()
        .filter(|q| *q == &topic || q.starts_with(&format!("{topic}.")))
        .collect();
    eprintln!(
        "resources: after a graceful stop, of {CLIENTS} reply and {fanout_during} fanout queues \
         left: {:?}; service queues kept (oslo's): {kept:?}",
        left(&after)
    );
    assert!(
        left(&after).is_empty(),
        "the dropped client's reply queue is left: {:?}",
        left(&after)
    );
    assert_eq!(kept.len(), 3, "{kept:?}");
    let exchanges = support::rabbitmqctl(&["list_exchanges", "-q", "--no-table-headers", "name"]);
    assert!(
        !exchanges.lines().any(|l| l == format!("{topic}_fanout")),
        "the fanout exchange is auto-delete and goes with its last queue"
    );

    let _ = connection.close(200, "OK".into()).await;
    delete_service_queues(&topic, &server_names).await;
}
