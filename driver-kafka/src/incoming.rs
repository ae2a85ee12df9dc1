//! What arrives on topics: the handlers that decode records for a notification
//! listener, an RPC server and a reply topic, and how a notification is settled and
//! a call answered. A record that cannot be read is logged, marked done (so it is
//! committed and skipped) and the consumer goes on.

use std::sync::Arc;

use async_trait::async_trait;
use messaging_core::driver::{
    Disposition, IncomingNotification, IncomingRequest, PublishReply, ReplyWaiters, RequestIntake,
    Settle,
};
use messaging_core::wire::{NotificationMessage, Reply, Request};
use messaging_core::{Result, Retry};
use tokio::sync::mpsc;

use crate::consumer::{Ack, Handler, Record};
use crate::producer::{Missing, Producer};
use crate::telemetry::Publish;

fn skip(record: &Record<'_>, what: &str, error: &messaging_core::Error) {
    tracing::warn!(
        topic = record.topic,
        partition = record.partition,
        offset = record.offset,
        %error,
        "malformed {what} skipped"
    );
}

/// Decodes notifications for a listener.
pub struct NotificationHandler {
    /// Where decoded notifications go.
    pub tx: mpsc::UnboundedSender<IncomingNotification>,
    /// oslo's order: mark done (and so commit) before the handler runs.
    pub commit_before_dispatch: bool,
    /// With `commit_before_dispatch`: leave the commit to the background committer
    /// instead of committing each notification synchronously (oslo's
    /// `enable_auto_commit`).
    pub auto_commit: bool,
}

impl Handler for NotificationHandler {
    fn handle(&mut self, record: Record<'_>, ack: Ack) {
        let message = match NotificationMessage::decode(record.payload) {
            Ok(m) => m,
            Err(e) => {
                skip(&record, "notification", &e);
                ack.done();
                return;
            }
        };
        let settle: Box<dyn Settle> = if self.commit_before_dispatch {
            if self.auto_commit {
                ack.done();
            } else {
                ack.done_and_commit();
            }
            Box::new(Committed)
        } else {
            Box::new(KafkaSettle {
                ack: Some(ack),
                payload: record.payload.to_vec(),
                tx: self.tx.clone(),
            })
        };
        let _ = self.tx.send(IncomingNotification { message, settle });
    }
}

/// Settles a notification whose offset is committed once it is acked. A requeued
/// (or dropped, unsettled) notification is handed to the listener again; its offset
/// stays uncommitted until then, so a crash in between redelivers it from the broker.
struct KafkaSettle {
    ack: Option<Ack>,
    payload: Vec<u8>,
    tx: mpsc::UnboundedSender<IncomingNotification>,
}

#[async_trait]
impl Settle for KafkaSettle {
    async fn settle(mut self: Box<Self>, disposition: Disposition) -> Result<()> {
        if disposition == Disposition::Ack
            && let Some(ack) = self.ack.take()
        {
            ack.done();
        }
        // A requeue happens in drop.
        Ok(())
    }
}

impl Drop for KafkaSettle {
    fn drop(&mut self) {
        let Some(ack) = self.ack.take() else {
            return;
        };
        // Checked first: a failed send would drop `again` and come back here. The
        // offset stays uncommitted, so the broker redelivers it.
        if self.tx.is_closed() {
            return;
        }
        // The bytes decoded once already: this cannot fail.
        if let Ok(message) = NotificationMessage::decode(&self.payload) {
            let again = KafkaSettle {
                ack: Some(ack),
                payload: std::mem::take(&mut self.payload),
                tx: self.tx.clone(),
            };
            let _ = self.tx.send(IncomingNotification {
                message,
                settle: Box::new(again),
            });
        }
    }
}

/// The settle of a notification committed before dispatch: nothing left to do, and
/// a requeue cannot be honoured.
struct Committed;

#[async_trait]
impl Settle for Committed {
    async fn settle(self: Box<Self>, disposition: Disposition) -> Result<()> {
        if disposition == Disposition::Requeue {
            tracing::warn!(
                "requeue ignored: commit_before_dispatch committed the notification already"
            );
        }
        Ok(())
    }
}

/// Decodes RPC requests for a server; acks each on receipt (oslo's at-most-once
/// execution) and drops duplicates by `_unique_id`.
pub struct RequestHandler {
    /// Where decoded requests go.
    pub tx: mpsc::UnboundedSender<IncomingRequest>,
    /// Drops repeats and gives calls their responders.
    pub intake: RequestIntake<Producer>,
}

impl RequestHandler {
    /// A handler sending requests to `tx` and replies through `producer`.
    pub fn new(tx: mpsc::UnboundedSender<IncomingRequest>, producer: Arc<Producer>) -> Self {
        RequestHandler {
            tx,
            intake: RequestIntake::new(producer),
        }
    }
}

impl Handler for RequestHandler {
    fn handle(&mut self, record: Record<'_>, ack: Ack) {
        ack.done();
        let request = match Request::decode(record.payload) {
            Ok(r) => r,
            Err(e) => return skip(&record, "request", &e),
        };
        if let Some(incoming) = self.intake.admit(request) {
            let _ = self.tx.send(incoming);
        }
    }
}

/// Replies go to the caller's reply topic.
#[async_trait]
impl PublishReply for Producer {
    type Address = String;

    async fn publish_reply(&self, topic: &String, reply: &Reply) -> Result<()> {
        let body = reply.encode()?;
        // A reply topic that is gone means its caller is gone: nothing to retry.
        self.send(
            topic,
            &body,
            Publish::Reply,
            Missing::Refuse,
            Retry::Times(3),
        )
        .await
    }
}

/// Hands replies on a reply topic to the calls waiting for them.
pub struct ReplyHandler {
    /// The calls waiting.
    pub waiters: ReplyWaiters,
}

impl Handler for ReplyHandler {
    fn handle(&mut self, record: Record<'_>, ack: Ack) {
        ack.done();
        self.waiters.deliver_body(record.payload);
    }
}
