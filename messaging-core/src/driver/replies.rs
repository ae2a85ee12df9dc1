//! A caller's side of calls: its reply queue ([`ReplyInbox`]), the calls waiting on it
//! ([`ReplyWaiters`]), and the wait for one call's reply under the call timeout and the
//! call-monitor timeout ([`PendingReply`]). Replies arriving on the queue are handed to
//! their calls by `_msg_id`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::telemetry::catalog;
use crate::wire::request::new_id;
use crate::wire::{Reply, ReplyAddress, Request};
use crate::{Detail, Error, ErrorKind, Result};

/// What reaches a waiting call.
// Its size does not matter: the channel carries it boxed (`Outcome`).
#[allow(clippy::large_enum_variant)]
enum Answer {
    /// A reply (or heartbeat) from the server.
    Reply(Reply),
    /// The driver learned the call cannot be answered.
    Failed(Error),
    /// The peer the request reached took no server for it; the driver may try another.
    Refused(String),
}

/// What a call's channel carries: boxed, because an unbounded channel allocates
/// room for 32 items up front, and 32 unboxed answers made a waiting call cost 10 KiB.
type Outcome = Box<Answer>;

/// How a call ended, for a driver that can try another peer when one refuses.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    /// The final reply's result.
    Replied(Value),
    /// The peer the request reached has no server for it (see
    /// [`ReplyWaiters::refuse`]); the reason is the peer's.
    Refused {
        /// Why, as the peer said it.
        reason: String,
    },
}

/// A caller's reply queue: its name, which requests carry as their reply address, and
/// the calls waiting for replies on it.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::time::Duration;
/// use messaging_core::driver::ReplyInbox;
/// use messaging_core::wire::{Reply, Request};
///
/// let inbox = ReplyInbox::new("reply_abc");
/// let mut request = Request::new("ping", serde_json::Map::new(), messaging_core::Context::new());
/// let pending = inbox.start_call(&mut request, None);
/// let address = request.reply.clone().unwrap();
/// assert_eq!(address.reply_q, "reply_abc");
/// // ... the request is sent; the server's reply arrives on the queue:
/// inbox.waiters.deliver(Reply::new(address.msg_id, Ok(serde_json::json!("pong"))));
/// let result = pending.wait(Duration::from_secs(1), None, "topic").await.unwrap();
/// assert_eq!(result, "pong");
/// # });
/// ```
#[derive(Clone)]
pub struct ReplyInbox {
    /// The reply queue's (or topic's) name.
    pub name: String,
    /// The calls waiting on it; the driver's consumer of the queue hands replies here.
    pub waiters: ReplyWaiters,
}

impl ReplyInbox {
    /// The reply queue `name`, with no call waiting.
    pub fn new(name: impl Into<String>) -> Self {
        ReplyInbox {
            name: name.into(),
            waiters: ReplyWaiters::new(),
        }
    }

    /// Starts a call of `request`: gives it a new `msg_id`, makes this queue its reply
    /// address (with `call_monitor_timeout`, which tells the server to send
    /// heartbeats), and registers it, before the request is sent.
    pub fn start_call(
        &self,
        request: &mut Request,
        call_monitor_timeout: Option<Duration>,
    ) -> PendingReply {
        let msg_id = new_id();
        let pending = self.waiters.register(&msg_id);
        request.reply = Some(ReplyAddress::new(
            msg_id,
            self.name.clone(),
            call_monitor_timeout,
        ));
        pending
    }
}

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
        self.send(&msg_id, Answer::Reply(reply));
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
                        let error = Error::Malformed(format!("unreadable reply: {e}"));
                        self.send(&id, Answer::Failed(error))
                    }
                    None => tracing::warn!(error = %e, "malformed reply dropped"),
                }
            }
        }
    }

    /// Fails the call waiting under `msg_id` with `error` (a driver learned that its
    /// request cannot be answered, e.g. refused by the node it reached).
    pub fn fail(&self, msg_id: &str, error: Error) {
        self.send(msg_id, Answer::Failed(error));
    }

    /// Tells the call waiting under `msg_id` that the peer its request reached took no
    /// server for it: [`PendingReply::outcome_until`] returns
    /// [`CallOutcome::Refused`], and the driver may try another peer.
    pub fn refuse(&self, msg_id: &str, reason: impl Into<String>) {
        self.send(msg_id, Answer::Refused(reason.into()));
    }

    fn send(&self, msg_id: &str, answer: Answer) {
        let sender = self.lock().get(msg_id).cloned();
        match sender {
            Some(tx) => {
                let _ = tx.send(Box::new(answer));
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
    /// A refusal (which only drivers that [`ReplyWaiters::refuse`] can see) is a
    /// [`Error::DeliveryFailure`].
    pub async fn wait_until(
        self,
        deadline: Instant,
        timeout: Duration,
        call_monitor_timeout: Option<Duration>,
        topic: &str,
    ) -> Result<Value> {
        match self
            .outcome_until(deadline, timeout, call_monitor_timeout, topic)
            .await?
        {
            CallOutcome::Replied(result) => Ok(result),
            CallOutcome::Refused { reason } => Err(Error::DeliveryFailure(Detail::new(
                ErrorKind::RefusedByBroker,
                format!("the call on topic {topic} was refused: {reason}"),
            ))),
        }
    }

    /// Waits as [`PendingReply::wait_until`] does, and tells a refused call apart
    /// ([`CallOutcome::Refused`]) so that the driver can send it elsewhere.
    pub async fn outcome_until(
        mut self,
        deadline: Instant,
        timeout: Duration,
        call_monitor_timeout: Option<Duration>,
        topic: &str,
    ) -> Result<CallOutcome> {
        let mut last_result = Value::Null;
        let began = Instant::now();
        let replied = || {
            let labels = [("topic", topic.to_string())];
            metrics::histogram!(catalog::REPLY_WAIT_SECONDS, &labels)
                .record(began.elapsed().as_secs_f64());
        };
        loop {
            let next_deadline = match call_monitor_timeout {
                Some(m) => deadline.min(deadline_after(m)),
                None => deadline,
            };
            let answer = match tokio::time::timeout_at(next_deadline, self.rx.recv()).await {
                Ok(Some(answer)) => *answer,
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
            let reply = match answer {
                Answer::Reply(reply) => reply,
                Answer::Failed(error) => return Err(error),
                Answer::Refused(reason) => return Ok(CallOutcome::Refused { reason }),
            };
            if let Some(failure) = reply.failure {
                replied();
                return Err(Error::Remote(Box::new(failure)));
            }
            if !reply.result.is_null() {
                last_result = reply.result;
            }
            if reply.ending {
                replied();
                return Ok(CallOutcome::Replied(last_result));
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

    #[tokio::test]
    async fn a_refused_call_is_an_outcome_for_the_driver_and_a_delivery_failure_for_users() {
        let waiters = ReplyWaiters::new();
        let pending = waiters.register("m3");
        waiters.refuse("m3", "no server for t on this node");
        let outcome = pending
            .outcome_until(
                deadline_after(Duration::from_secs(5)),
                Duration::from_secs(5),
                None,
                "t",
            )
            .await
            .unwrap();
        assert_eq!(
            outcome,
            CallOutcome::Refused {
                reason: "no server for t on this node".into()
            }
        );
        let pending = waiters.register("m4");
        waiters.refuse("m4", "gone");
        let err = pending
            .wait(Duration::from_secs(5), None, "t")
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::DeliveryFailure(ref m) if m.contains("refused: gone")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn an_inbox_call_carries_the_queue_and_a_fresh_msg_id() {
        let inbox = ReplyInbox::new("reply_q");
        let ctx = crate::Context::new();
        let mut first = Request::new("m", serde_json::Map::new(), ctx.clone());
        let mut second = Request::new("m", serde_json::Map::new(), ctx);
        let _a = inbox.start_call(&mut first, Some(Duration::from_secs(2)));
        let _b = inbox.start_call(&mut second, None);
        let (a, b) = (first.reply.unwrap(), second.reply.unwrap());
        assert_eq!(
            (a.reply_q.as_str(), b.reply_q.as_str()),
            ("reply_q", "reply_q")
        );
        assert_ne!(a.msg_id, b.msg_id);
        assert_eq!(inbox.waiters.len(), 2);
    }
}
