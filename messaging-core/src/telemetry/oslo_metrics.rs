//! The oslo.metrics exporter: the RPC families sent as oslo.messaging sends them, one
//! JSON datagram per update on the Unix socket the `oslo-metrics` daemon reads, so the
//! daemon's Prometheus page shows Rust services beside Python ones.
//!
//! Configured by `[oslo_messaging_metrics]`: `metrics_enabled` turns it on,
//! `metrics_socket_file` is the daemon's socket, `metrics_buffer_size` bounds the
//! updates waiting to be sent (more are dropped with a warning, so a stalled daemon
//! never slows a service down), `metrics_process_name` is every update's `process`
//! label, and `metrics_thread_stop_timeout` is how long an update is retried (once a
//! second) while the daemon does not take it.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::rpc_metrics::Labels;
use crate::config::MetricsSection;

/// How long to wait before sending an update again after the daemon did not take it.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Hands metric updates to a thread that sends them to the oslo.metrics daemon. Cheap
/// to clone; the thread ends when the last clone is dropped.
#[derive(Clone)]
pub struct OsloMetricsSink {
    inner: Arc<Inner>,
}

struct Inner {
    queue: SyncSender<Vec<u8>>,
    capacity: usize,
    /// Whether a full buffer was reported since it last had room.
    full_reported: AtomicBool,
}

impl OsloMetricsSink {
    /// A sink for `section`, or `None` when `metrics_enabled` is off.
    pub fn from_config(section: &MetricsSection) -> Option<Self> {
        if !section.metrics_enabled {
            return None;
        }
        let capacity = section.metrics_buffer_size.max(1);
        let (queue, updates) = std::sync::mpsc::sync_channel(capacity);
        let socket = PathBuf::from(&section.metrics_socket_file);
        let patience = Duration::from_secs(section.metrics_thread_stop_timeout.max(1));
        let sender = std::thread::Builder::new()
            .name("oslo-metrics".into())
            .spawn(move || send_loop(&updates, &socket, patience));
        if let Err(e) = sender {
            tracing::warn!(error = %e, "cannot start the oslo.metrics thread; no metrics are sent to oslo.metrics");
            return None;
        }
        Some(OsloMetricsSink {
            inner: Arc::new(Inner {
                queue,
                capacity,
                full_reported: AtomicBool::new(false),
            }),
        })
    }

    /// Counts one more of the counter `name` (a full metric name, such as
    /// `oslo_messaging_rpc_client_invocation_start_total`).
    pub(crate) fn increment(&self, name: &str, labels: &Labels) {
        self.put(datagram(name, "inc", None, labels));
    }

    /// Observes `value` in the histogram `name`.
    pub(crate) fn observe(&self, name: &str, value: f64, labels: &Labels) {
        self.put(datagram(name, "observe", Some(value), labels));
    }

    fn put(&self, update: Vec<u8>) {
        match self.inner.queue.try_send(update) {
            Ok(()) => {
                self.inner.full_reported.store(false, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                if !self.inner.full_reported.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        capacity = self.inner.capacity,
                        "the oslo.metrics buffer is full (metrics_buffer_size); metrics are dropped until it has room"
                    );
                }
            }
            // The thread ended (it only does when every sink is gone).
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

impl std::fmt::Debug for OsloMetricsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OsloMetricsSink")
            .field("capacity", &self.inner.capacity)
            .finish_non_exhaustive()
    }
}

/// One update as oslo.metrics' `Metric.to_json()` writes it. The daemon knows the
/// families by their names without the `oslo_messaging_` prefix (its module).
fn datagram(name: &str, action: &str, value: Option<f64>, labels: &Labels) -> Vec<u8> {
    let short = name.strip_prefix("oslo_messaging_").unwrap_or(name);
    let update = json!({
        "module": "oslo_messaging",
        "name": short,
        "action": {"value": value.map_or(Value::Null, Value::from), "action": action},
        "labels": labels.json(),
    });
    update.to_string().into_bytes()
}

/// Sends the updates in order. An update the daemon does not take (no daemon, a full
/// socket) is tried again every second for `patience`, then dropped, so the buffer
/// drains again once the daemon is back.
fn send_loop(updates: &Receiver<Vec<u8>>, socket: &PathBuf, patience: Duration) {
    let client = match UnixDatagram::unbound() {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(error = %e, "cannot make a socket for oslo.metrics; no metrics are sent to it");
            return;
        }
    };
    let mut failing = false;
    while let Ok(update) = updates.recv() {
        let first_try = Instant::now();
        loop {
            match client.send_to(&update, socket) {
                Ok(_) => {
                    if failing {
                        tracing::info!(socket = %socket.display(), "oslo.metrics takes metrics again");
                        failing = false;
                    }
                    break;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(socket = %socket.display(), error = %e, "cannot send metrics to oslo.metrics; trying again every second");
                        failing = true;
                    }
                    if first_try.elapsed() >= patience {
                        break;
                    }
                    std::thread::sleep(RETRY_INTERVAL);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Target;
    use crate::telemetry::rpc_metrics::CallType;

    #[test]
    fn updates_reach_the_socket_as_oslo_metrics_datagrams() {
        let dir = std::env::temp_dir().join(format!("oslo-metrics-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.sock");
        let daemon = UnixDatagram::bind(&path).unwrap();
        daemon
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let section = MetricsSection {
            metrics_enabled: true,
            metrics_socket_file: path.to_string_lossy().into_owned(),
            ..MetricsSection::default()
        };
        let sink = OsloMetricsSink::from_config(&section).expect("enabled");
        let labels = Labels::client(&Target::topic("t1"), "meth", CallType::Call, "myproc");
        sink.increment("oslo_messaging_rpc_client_invocation_start_total", &labels);
        sink.observe("oslo_messaging_rpc_client_processing_seconds", 0.5, &labels);
        let mut buf = vec![0; 65536];
        let mut got = Vec::new();
        for _ in 0..2 {
            let n = daemon.recv(&mut buf).unwrap();
            got.push(serde_json::from_slice::<Value>(&buf[..n]).unwrap());
        }
        assert_eq!(got[0]["module"], "oslo_messaging");
        assert_eq!(got[0]["name"], "rpc_client_invocation_start_total");
        assert_eq!(got[0]["action"], json!({"value": null, "action": "inc"}));
        assert_eq!(got[0]["labels"]["topic"], "t1");
        assert_eq!(got[0]["labels"]["exchange"], Value::Null);
        assert_eq!(got[0]["labels"]["process"], "myproc");
        assert_eq!(got[1]["name"], "rpc_client_processing_seconds");
        assert_eq!(got[1]["action"], json!({"value": 0.5, "action": "observe"}));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn disabled_metrics_make_no_sink() {
        assert!(OsloMetricsSink::from_config(&MetricsSection::default()).is_none());
    }

    #[test]
    fn a_full_buffer_drops_updates_without_blocking() {
        let section = MetricsSection {
            metrics_enabled: true,
            metrics_buffer_size: 2,
            metrics_socket_file: "/nonexistent/oslo-metrics.sock".into(),
            ..MetricsSection::default()
        };
        let sink = OsloMetricsSink::from_config(&section).expect("enabled");
        let labels = Labels::client(&Target::topic("t"), "m", CallType::Cast, "");
        // The thread holds one update and retries it; the buffer takes two; the rest
        // are dropped (a put that waited would hang this test).
        for _ in 0..100 {
            sink.increment("oslo_messaging_rpc_client_invocation_start_total", &labels);
        }
        assert!(sink.inner.full_reported.load(Ordering::Relaxed));
    }
}
