//! Demultiplexes replies arriving on one reply queue to the calls waiting for them,
//! and applies the call timeout and the call-monitor timeout. Shared by every driver
//! that has a reply queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::wire::Reply;
use crate::{Error, Result};

/// What a call's channel carries: boxed, because an unbounded channel allocates
/// room for 32 items up front, and 32 unboxed replies made a waiting call cost 10 KiB.
type Outcome = Box<Result<Reply>>;

/// The calls waiting on one reply queue, keyed by `_msg_id`.
#[derive(Clone, Default)]
pub struct ReplyWaiters {
    waiting: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Outcome>>>>,
}

/// One registered call; unregisters itself when dropped.
pub struct PendingReply {
    msg_id: String,
    rx: mpsc::UnboundedReceiver<Outcome>,
    waiters: ReplyWaiters,
}

impl ReplyWaiters {
    /// No calls waiting.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a call before its request is sent.
    pub fn register(&self, msg_id: &str) -> PendingReply {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().insert(msg_id.to_string(), tx);
        PendingReply {
            msg_id: msg_id.to_string(),
            rx,
            waiters: self.clone(),
        }
    }

    /// Hands a received reply to its call; a reply nobody waits for is logged and dropped.
    pub fn deliver(&self, reply: Reply) {
        let msg_id = reply.msg_id.clone();
        self.send(&msg_id, Ok(reply));
    }

    /// Decodes a reply body and hands it to its call. A body that names a waiting
    /// call but cannot be read fails that call with `Error::Malformed` at once (rather
    /// than letting it time out); anything else unreadable is logged and dropped.
    pub fn deliver_body(&self, body: &[u8]) {
        match Reply::decode(body) {
            Ok(reply) => self.deliver(reply),
            Err(e) => {
                let msg_id = crate::wire::envelope::decode(body).ok().and_then(|m| {
                    m.get("_msg_id")
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_string)
                });
                match msg_id {
                    Some(id) => {
                        self.send(&id, Err(Error::Malformed(format!("unreadable reply: {e}"))))
                    }
                    None => tracing::warn!(error = %e, "malformed reply dropped"),
                }
            }
        }
    }

    /// Fails the call waiting under `msg_id` with `error` (a driver learned that its
    /// request cannot be answered, e.g. refused by the node it reached).
    pub fn fail(&self, msg_id: &str, error: Error) {
        self.send(msg_id, Err(error));
    }

    fn send(&self, msg_id: &str, reply: Result<Reply>) {
        let sender = self.lock().get(msg_id).cloned();
        match sender {
            Some(tx) => {
                let _ = tx.send(Box::new(reply));
            }
            None => tracing::warn!(msg_id, "no calling task waiting for reply; dropped"),
        }
    }

    /// How many calls are waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no call is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<Outcome>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl PendingReply {
    /// Waits for the final reply. Heartbeats (and, as in oslo's old two-message
    /// protocol, non-final replies) restart the call-monitor timer; the overall
    /// `timeout` always applies. A failure becomes `Error::Remote`.
    pub async fn wait(
        self,
        timeout: Duration,
        call_monitor_timeout: Option<Duration>,
        topic: &str,
    ) -> Result<Value> {
        self.wait_until(
            deadline_after(timeout),
            timeout,
            call_monitor_timeout,
            topic,
        )
        .await
    }

    /// [`PendingReply::wait`] for a call whose `timeout` started before its request was
    /// published: the reply is waited for until `deadline`, and a timeout names `timeout`.
    pub async fn wait_until(
        mut self,
        deadline: Instant,
        timeout: Duration,
        call_monitor_timeout: Option<Duration>,
        topic: &str,
    ) -> Result<Value> {
        let mut last_result = Value::Null;
        loop {
            let next_deadline = match call_monitor_timeout {
                Some(m) => deadline.min(deadline_after(m)),
                None => deadline,
            };
            let reply = match tokio::time::timeout_at(next_deadline, self.rx.recv()).await {
                Ok(Some(reply)) => (*reply)?,
                Ok(None) => return Err(Error::Transport("reply queue closed".into())),
                Err(_) if next_deadline < deadline => {
                    return Err(Error::Timeout(format!(
                        "no reply or heartbeat on topic {topic} within the call monitor timeout of {:?}",
                        call_monitor_timeout.unwrap_or_default()
                    ).into()));
                }
                Err(_) => {
                    return Err(Error::Timeout(
                        format!("no reply on topic {topic} within {timeout:?}").into(),
                    ));
                }
            };
            if let Some(failure) = reply.failure {
                return Err(Error::Remote(Box::new(failure)));
            }
            if !reply.result.is_null() {
                last_result = reply.result;
            }
            if reply.ending {
                return Ok(last_result);
            }
        }
    }
}

/// `now + after`, saturating far in the future instead of overflowing.
pub fn deadline_after(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

impl Drop for PendingReply {
    fn drop(&mut self) {
        self.waiters.lock().remove(&self.msg_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn an_unreadable_reply_fails_its_call_at_once() {
        let waiters = ReplyWaiters::new();
        let pending = waiters.register("m1");
        let inner =
            json!({"_msg_id": "m1", "failure": "{\"class\": 5}", "result": null, "ending": true});
        let body = crate::wire::envelope::encode(&inner).unwrap();
        waiters.deliver_body(&body);
        let err = pending
            .wait(Duration::from_secs(30), None, "t")
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Malformed(ref m) if m.contains("class")),
            "{err:?}"
        );
        assert!(waiters.is_empty(), "the call unregistered itself");
    }

    #[tokio::test]
    async fn heartbeats_restart_the_monitor_and_the_last_result_wins() {
        let waiters = ReplyWaiters::new();
        let pending = waiters.register("m2");
        let w = waiters.clone();
        tokio::spawn(async move {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(60)).await;
                w.deliver(Reply::heartbeat("m2"));
            }
            w.deliver(Reply {
                ending: false,
                ..Reply::new("m2", Ok(json!(1)))
            });
            w.deliver(Reply::new("m2", Ok(serde_json::Value::Null)));
        });
        let got = pending
            .wait(
                Duration::from_secs(5),
                Some(Duration::from_millis(100)),
                "t",
            )
            .await
            .unwrap();
        assert_eq!(
            got,
            json!(1),
            "old two-message protocol: the last non-null result is kept"
        );
    }
}
