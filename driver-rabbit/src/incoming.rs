//! What arrives on queues: reading bodies (decompressing them), and the three
//! delivery sinks: replies for waiting calls, RPC requests for a server, and
//! notifications for a listener. A message that cannot be read is logged and
//! rejected without requeue; the consumer goes on.

use std::borrow::Cow;

use async_trait::async_trait;
use lapin::Acker;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicRejectOptions};
use lapin::types::AMQPValue;
use messaging_core::driver::{
    Disposition, IncomingNotification, IncomingRequest, Responder, Settle,
};
use messaging_core::rpc::reply_waiter::ReplyWaiters;
use messaging_core::wire::dedup::{DEFAULT_CAPACITY, DuplicateFilter};
use messaging_core::wire::{NotificationMessage, Request};
use messaging_core::{Error, Result};
use std::sync::Arc;
use tokio::sync::mpsc;

use crate::compression::{self, Compression};
use crate::consumer::DeliverySink;
use crate::reply::{AmqpResponder, Replier};

/// The body of a delivery, decompressed when its `compression` header says so.
pub(crate) fn body_of(delivery: &Delivery) -> Result<Cow<'_, [u8]>> {
    let codec = delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(compression::HEADER));
    match codec {
        None => Ok(Cow::Borrowed(&delivery.data)),
        Some(AMQPValue::LongString(s)) => {
            let name = String::from_utf8_lossy(s.as_bytes());
            Ok(Cow::Owned(
                Compression::from_header(&name)?.decompress(&delivery.data)?,
            ))
        }
        Some(AMQPValue::ShortString(s)) => Ok(Cow::Owned(
            Compression::from_header(s.as_str())?.decompress(&delivery.data)?,
        )),
        Some(other) => Err(Error::Malformed(format!(
            "compression header is not a string: {other:?}"
        ))),
    }
}

async fn reject(delivery: &Delivery, what: &str, error: &Error) {
    tracing::warn!(
        exchange = %delivery.exchange,
        routing_key = %delivery.routing_key,
        %error,
        "malformed {what} rejected"
    );
    if let Err(e) = delivery
        .acker
        .reject(BasicRejectOptions { requeue: false })
        .await
    {
        tracing::warn!(error = %e, "could not reject a malformed {what}");
    }
}

/// Hands replies to the calls waiting on this transport's reply queue.
pub(crate) struct ReplySink {
    pub waiters: ReplyWaiters,
}

#[async_trait]
impl DeliverySink for ReplySink {
    async fn deliver(&mut self, batch: Vec<(usize, Delivery)>) {
        // The reply consumer runs without acknowledgements.
        for (_, delivery) in batch {
            match body_of(&delivery) {
                Ok(body) => self.waiters.deliver_body(&body),
                Err(e) => tracing::warn!(error = %e, "unreadable reply dropped"),
            }
        }
    }
}

/// Acks RPC requests on receipt (oslo's at-most-once), drops duplicates by
/// `_unique_id`, and queues them for the server.
pub(crate) struct RequestSink {
    pub tx: mpsc::UnboundedSender<IncomingRequest>,
    pub replier: Arc<Replier>,
    pub duplicates: DuplicateFilter,
}

impl RequestSink {
    pub(crate) fn new(tx: mpsc::UnboundedSender<IncomingRequest>, replier: Arc<Replier>) -> Self {
        RequestSink {
            tx,
            replier,
            duplicates: DuplicateFilter::new(DEFAULT_CAPACITY),
        }
    }
}

#[async_trait]
impl DeliverySink for RequestSink {
    async fn deliver(&mut self, batch: Vec<(usize, Delivery)>) {
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
            let acked = acker.ack(BasicAckOptions { multiple: true }).await;
            if let Err(e) = acked {
                // Without the ack the broker may deliver them again: run them at most once.
                tracing::warn!(error = %e, "could not ack requests; discarded");
                requests.retain(|(q, _)| *q != queue);
            }
        }
        for (_, request) in requests {
            if let Some(id) = &request.unique_id
                && self.duplicates.check_and_remember(id)
            {
                tracing::debug!(unique_id = %id, "duplicate request dropped");
                continue;
            }
            let responder = request.reply.as_ref().map(|address| {
                Box::new(AmqpResponder {
                    replier: self.replier.clone(),
                    reply_q: address.reply_q.clone(),
                    msg_id: address.msg_id.clone(),
                }) as Box<dyn Responder>
            });
            let _ = self.tx.send(IncomingRequest { request, responder });
        }
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
        let result = match disposition {
            Disposition::Ack => acker.ack(BasicAckOptions::default()).await,
            Disposition::Requeue => acker.reject(BasicRejectOptions { requeue: true }).await,
        };
        // After a reconnect the old channel is gone and the broker has already put the
        // message back: nothing is lost, but say so.
        result.map(|_| ()).map_err(|e| {
            Error::Transport(format!(
                "could not settle a notification ({disposition:?}): {e}"
            ))
        })
    }
}

impl Drop for AmqpSettle {
    fn drop(&mut self) {
        if let Some(acker) = self.acker.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = acker.reject(BasicRejectOptions { requeue: true }).await;
            });
        }
    }
}
