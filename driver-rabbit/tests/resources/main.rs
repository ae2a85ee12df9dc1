//! Resources stay bounded on the real RabbitMQ: 10,000 outstanding calls from one
//! client and a server with 1,000 queued requests keep the memory of the process
//! bounded (the peak RSS is printed), and once clients and servers have stopped
//! gracefully no reply or fanout queue is left on the broker.
//!
//! The RSS is the whole process's, so the tests of this binary run one at a time.

#[path = "../support/mod.rs"]
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

mod leftover_queues;
mod outstanding_calls;
mod queued_requests;

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
    server.stop().await;
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
