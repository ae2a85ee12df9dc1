//! What arrives on queues: reading bodies (decompressing them), and the three
//! delivery sinks: replies for waiting calls, RPC requests for a server, and
//! notifications for a listener. A message that cannot be read is logged and
//! rejected without requeue; the consumer goes on.
//!
//! Every ack and reject is bounded by [`SETTLE_PATIENCE`]: lapin can leave one
//! unresolved for good when the connection dies while it is queued, and an unbounded
//! wait there would stall the consumer (or the listener) for good.
//!
//! RPC requests are acked on receipt, which frees the prefetch window at once: with
//! `rabbit_qos_prefetch_count` set, a [`Backlog`] keeps the requests received but
//! not yet taken by the server under that count, so that the rest wait on the broker
//! (as oslo's, which acks when its executor takes a request).

use async_trait::async_trait;
use lapin::Acker;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicRejectOptions};
use messaging_core::driver::{
    ChannelListener, Disposition, IncomingNotification, IncomingRequest, Listener, RequestIntake,
    Settle,
};
use messaging_core::wire::{NotificationMessage, Request};
use messaging_core::{Error, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

use crate::compression::body_of;
use crate::consumer::{DeliverySink, Supervised};
use crate::reply::Replier;

/// How long an ack or a reject may take. It is one frame handed to the connection,
/// done in microseconds while the connection lives; but when the connection dies
/// while the frame waits (a node killed under load), lapin may never resolve it.
/// Past this the settlement counts as failed, which it is: the connection is gone and
/// the broker requeues what its channels held.
const SETTLE_PATIENCE: Duration = Duration::from_secs(10);

/// Why an ack or reject did not reach the broker.
#[derive(Debug)]
enum Unsettled {
    /// lapin's error: the channel or connection failed under it.
    Failed(lapin::Error),
    /// The channel had already ended (lapin's `Ok(false)`): nothing was sent.
    ChannelEnded,
    /// No outcome within [`SETTLE_PATIENCE`].
    TimedOut,
}

impl std::fmt::Display for Unsettled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unsettled::Failed(e) => e.fmt(f),
            Unsettled::ChannelEnded => f.write_str("its channel had already ended"),
            Unsettled::TimedOut => write!(f, "no outcome within {SETTLE_PATIENCE:?}"),
        }
    }
}

impl Unsettled {
    /// As the core's error: the settlement's kind, and lapin's error as source.
    fn into_error(self, message: String) -> Error {
        let detail = match self {
            Unsettled::Failed(e) => {
                messaging_core::Detail::new(crate::kinds::of(&e), message).with_source(e)
            }
            Unsettled::ChannelEnded => {
                messaging_core::Detail::new(messaging_core::ErrorKind::ConnectionLost, message)
            }
            Unsettled::TimedOut => {
                messaging_core::Detail::new(messaging_core::ErrorKind::Timeout, message)
            }
        };
        Error::Transport(detail)
    }
}

/// How often a settlement in progress checks whether its channel has ended.
const POISON_CHECK: Duration = Duration::from_millis(50);

/// What to tell the broker about a delivery.
#[derive(Debug, Clone, Copy)]
enum Settlement {
    /// Acknowledge it (and, with `multiple`, every earlier one of its channel).
    Ack { multiple: bool },
    /// Reject it, back to its queue or not.
    Reject { requeue: bool },
}

/// Sends `settlement` for `acker`'s delivery, as [`within_patience`] bounds it.
async fn settle(acker: &Acker, settlement: Settlement) -> std::result::Result<(), Unsettled> {
    let channel_ended = || acker.poisoned();
    match settlement {
        Settlement::Ack { multiple } => {
            within_patience(acker.ack(BasicAckOptions { multiple }), channel_ended).await
        }
        Settlement::Reject { requeue } => {
            within_patience(acker.reject(BasicRejectOptions { requeue }), channel_ended).await
        }
    }
}

/// Waits for an ack or reject: done when lapin answers, when `channel_ended` says
/// the delivery's channel is gone (lapin poisons its ackers; the broker requeues the
/// message), or after [`SETTLE_PATIENCE`].
async fn within_patience(
    settlement: impl std::future::Future<Output = lapin::Result<bool>>,
    channel_ended: impl Fn() -> bool,
) -> std::result::Result<(), Unsettled> {
    let ended = async {
        loop {
            tokio::time::sleep(POISON_CHECK).await;
            if channel_ended() {
                break;
            }
        }
    };
    tokio::select! {
        biased;
        outcome = tokio::time::timeout(SETTLE_PATIENCE, settlement) => match outcome {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(Unsettled::ChannelEnded),
            Ok(Err(e)) => Err(Unsettled::Failed(e)),
            Err(_) => Err(Unsettled::TimedOut),
        },
        () = ended => Err(Unsettled::ChannelEnded),
    }
}

async fn reject(delivery: &Delivery, what: &str, error: &Error) {
    tracing::warn!(
        exchange = %delivery.exchange,
        routing_key = %delivery.routing_key,
        %error,
        "malformed {what} rejected"
    );
    let rejected = settle(&delivery.acker, Settlement::Reject { requeue: false }).await;
    if let Err(e) = rejected {
        tracing::warn!(error = %e, "could not reject a malformed {what}");
    }
}

/// The requests a server has received (and acked) but not yet taken, kept under a
/// bound by making the sink wait before it acks more.
pub(crate) struct Backlog {
    bound: usize,
    waiting: AtomicUsize,
    closed: AtomicBool,
    changed: Notify,
}

impl Backlog {
    /// At most `bound` requests waiting for the server.
    pub(crate) fn new(bound: usize) -> Arc<Backlog> {
        Arc::new(Backlog {
            bound: bound.max(1),
            waiting: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            changed: Notify::new(),
        })
    }

    fn took(&self) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        self.changed.notify_one();
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.changed.notify_one();
    }

    /// Waits until `n` more requests fit (or none wait, for a batch larger than the
    /// bound); false once the server takes no more (the listener is cleaned up or gone).
    async fn room(&self, n: usize, tx: &mpsc::UnboundedSender<IncomingRequest>) -> bool {
        loop {
            if self.closed.load(Ordering::Acquire) || tx.is_closed() {
                return false;
            }
            let waiting = self.waiting.load(Ordering::Acquire);
            if waiting == 0 || waiting + n <= self.bound {
                return true;
            }
            tokio::select! {
                _ = self.changed.notified() => {}
                _ = tx.closed() => {}
            }
        }
    }
}

/// Acks RPC requests on receipt (oslo's at-most-once), drops duplicates by
/// `_unique_id`, and queues them for the server.
pub(crate) struct RequestSink {
    pub tx: mpsc::UnboundedSender<IncomingRequest>,
    pub intake: RequestIntake<Replier>,
    pub backlog: Option<Arc<Backlog>>,
}

impl RequestSink {
    pub(crate) fn new(
        tx: mpsc::UnboundedSender<IncomingRequest>,
        replier: Arc<Replier>,
        backlog: Option<Arc<Backlog>>,
    ) -> Self {
        RequestSink {
            tx,
            intake: RequestIntake::new(replier),
            backlog,
        }
    }
}

#[async_trait]
impl DeliverySink for RequestSink {
    async fn deliver(&mut self, batch: Vec<(usize, Delivery)>) {
        // Not acked while the server is behind: unacked, they hold the prefetch window
        // and the broker keeps the rest. If the server takes no more, they go back to
        // the queue when the connection closes.
        if let Some(backlog) = &self.backlog
            && !backlog.room(batch.len(), &self.tx).await
        {
            return;
        }
        // Requests are acked on receipt, before anything runs: one `multiple` ack per
        // queue covers the batch (each queue has its own channel, so its tags rise).
        let mut requests = Vec::with_capacity(batch.len());
        let mut last_of_queue: Vec<(usize, Acker)> = Vec::new();
        for (queue, delivery) in batch {
            match body_of(&delivery).and_then(|body| Request::decode(&body)) {
                Ok(request) => {
                    match last_of_queue.iter_mut().find(|(q, _)| *q == queue) {
                        Some(last) => last.1 = delivery.acker,
                        None => last_of_queue.push((queue, delivery.acker)),
                    }
                    requests.push((queue, request));
                }
                Err(e) => reject(&delivery, "request", &e).await,
            }
        }
        for (queue, acker) in last_of_queue {
            let acked = settle(&acker, Settlement::Ack { multiple: true }).await;
            if let Err(e) = acked {
                // Without the ack the broker delivers them again (to this server or
                // another) once the channel is gone: run them at most once.
                tracing::warn!(error = %e, "could not ack requests; discarded");
                requests.retain(|(q, _)| *q != queue);
            }
        }
        for (_, request) in requests {
            let Some(incoming) = self.intake.admit(request) else {
                continue;
            };
            if let Some(backlog) = &self.backlog {
                backlog.waiting.fetch_add(1, Ordering::AcqRel);
            }
            let _ = self.tx.send(incoming);
        }
    }
}

/// A server's listener: the channel the [`RequestSink`] fills, telling its
/// [`Backlog`] what the server takes.
pub(crate) struct ServerListener {
    pub inner: ChannelListener<IncomingRequest, Supervised>,
    pub backlog: Option<Arc<Backlog>>,
}

#[async_trait]
impl Listener<IncomingRequest> for ServerListener {
    async fn next(&mut self) -> Option<IncomingRequest> {
        let request = self.inner.next().await;
        if let (Some(_), Some(backlog)) = (&request, &self.backlog) {
            backlog.took();
        }
        request
    }

    async fn stop(&mut self) {
        self.inner.stop().await;
    }

    fn backlog(&self) -> Option<usize> {
        self.inner.backlog()
    }

    async fn cleanup(&mut self) {
        if let Some(backlog) = &self.backlog {
            backlog.close();
        }
        self.inner.cleanup().await;
    }
}

/// Queues notifications for a listener, each with the means to ack or requeue it.
pub(crate) struct NotificationSink {
    pub tx: mpsc::UnboundedSender<IncomingNotification>,
}

#[async_trait]
impl DeliverySink for NotificationSink {
    async fn deliver(&mut self, batch: Vec<(usize, Delivery)>) {
        for (_, delivery) in batch {
            let decoded = body_of(&delivery).and_then(|body| NotificationMessage::decode(&body));
            let message = match decoded {
                Ok(m) => m,
                Err(e) => {
                    reject(&delivery, "notification", &e).await;
                    continue;
                }
            };
            let settle = Box::new(AmqpSettle {
                acker: Some(delivery.acker),
            });
            let _ = self.tx.send(IncomingNotification { message, settle });
        }
    }
}

/// Acks or requeues one notification; requeues it if dropped unsettled.
struct AmqpSettle {
    acker: Option<Acker>,
}

#[async_trait]
impl Settle for AmqpSettle {
    async fn settle(mut self: Box<Self>, disposition: Disposition) -> Result<()> {
        let Some(acker) = self.acker.take() else {
            return Ok(());
        };
        let settlement = match disposition {
            Disposition::Ack => Settlement::Ack { multiple: false },
            Disposition::Requeue => Settlement::Reject { requeue: true },
        };
        let result = settle(&acker, settlement).await;
        // After a reconnect the old channel is gone and the broker has already put the
        // message back: nothing is lost, but say so.
        result.map_err(|e| {
            let message = format!("could not settle a notification ({disposition:?}): {e}");
            e.into_error(message)
        })
    }
}

impl Drop for AmqpSettle {
    fn drop(&mut self) {
        if let Some(acker) = self.acker.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = settle(&acker, Settlement::Reject { requeue: true }).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_settlement_ends_when_lapin_answers_the_channel_ends_or_patience_runs_out() {
        let answered = within_patience(async { Ok(true) }, || false).await;
        assert!(answered.is_ok());
        // lapin's "already used or poisoned": nothing went to the broker.
        let not_sent = within_patience(async { Ok(false) }, || false).await;
        assert!(matches!(not_sent, Err(Unsettled::ChannelEnded)));
        // An ack lapin never resolves, on a channel that ends meanwhile: given up at
        // once, not after the patience.
        let started = tokio::time::Instant::now();
        let pending = std::future::pending::<lapin::Result<bool>>();
        let waited = within_patience(pending, || started.elapsed() >= Duration::from_secs(1)).await;
        assert!(matches!(waited, Err(Unsettled::ChannelEnded)));
        assert!(started.elapsed() < Duration::from_secs(2));
        // One lapin never resolves on a channel that lives on: given up after the patience.
        let started = tokio::time::Instant::now();
        let pending = std::future::pending::<lapin::Result<bool>>();
        let waited = within_patience(pending, || false).await;
        assert!(matches!(waited, Err(Unsettled::TimedOut)));
        assert_eq!(started.elapsed().as_secs(), SETTLE_PATIENCE.as_secs());
    }

    #[tokio::test]
    async fn the_backlog_waits_for_room_and_gives_up_once_the_server_takes_no_more() {
        let backlog = Backlog::new(2);
        let (tx, rx) = mpsc::unbounded_channel::<IncomingRequest>();
        assert!(backlog.room(2, &tx).await);
        backlog.waiting.fetch_add(2, Ordering::AcqRel);
        // Full: a batch waits until the server takes enough.
        let room = backlog.room(1, &tx);
        tokio::pin!(room);
        assert!(futures::poll!(room.as_mut()).is_pending());
        backlog.took();
        assert!(room.await);
        // A batch larger than the bound goes once nothing waits.
        let room = backlog.room(5, &tx);
        tokio::pin!(room);
        assert!(futures::poll!(room.as_mut()).is_pending());
        backlog.took();
        assert!(room.await);
        // Gone or cleaned up: no more room, even if it waits already.
        backlog.waiting.fetch_add(2, Ordering::AcqRel);
        let room = backlog.room(1, &tx);
        tokio::pin!(room);
        assert!(futures::poll!(room.as_mut()).is_pending());
        drop(rx);
        assert!(!room.await);
        let (tx, _rx) = mpsc::unbounded_channel::<IncomingRequest>();
        let room = backlog.room(1, &tx);
        tokio::pin!(room);
        assert!(futures::poll!(room.as_mut()).is_pending());
        backlog.close();
        assert!(!room.await);
    }
}
