//! Replies: the client's reply queue (one per transport, shared by every call and
//! demultiplexed by `_msg_id` as replies arrive, with no polling), and the server's
//! side that sends replies and call-monitor heartbeats, retrying a missing reply queue
//! as oslo does (§2.9 of the reference): every 0.25 s for
//! `kombu_missing_consumer_retry_timeout`, then remembering the queue as gone.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lapin::message::Delivery;
use lru::LruCache;
use messaging_core::driver::{PublishReply, ReplyInbox, ReplyWaiters, deadline_after};
use messaging_core::wire::Reply;
use messaging_core::{Error, Result, Retry};

use crate::compression::body_of;
use crate::connection::Connector;
use crate::consumer::{ConsumerPlan, DeliverySink, Supervised};
use crate::publisher::{Outgoing, Publisher};
use crate::telemetry::Kind;
use crate::topology;

/// How often a reply to a missing queue is tried again.
const MISSING_QUEUE_RETRY_EVERY: Duration = Duration::from_millis(250);
/// How long a reply's publish may take when it starts at the end of the reply retry
/// window (a confirmation, or a return for a missing queue, takes milliseconds).
const LAST_ATTEMPT: Duration = Duration::from_secs(5);
/// How many vanished reply queues are remembered, and for how long.
const OBSOLETE_QUEUES: usize = 200;
const OBSOLETE_FOR: Duration = Duration::from_secs(60);

/// This transport's reply queue and the calls waiting on it.
pub(crate) struct ReplyQueue {
    pub inbox: ReplyInbox,
    consumer: tokio::sync::Mutex<Supervised>,
}

impl ReplyQueue {
    /// Declares the reply queue `name` and starts consuming it.
    pub(crate) async fn start(
        connector: Arc<Connector>,
        name: String,
        retry: Retry,
    ) -> Result<ReplyQueue> {
        let inbox = ReplyInbox::new(name);
        let plan = ConsumerPlan {
            queues: vec![topology::transient_queue(
                &inbox.name,
                Vec::new(),
                connector.options(),
            )],
            no_ack: true,
            prefetch: 0,
            arguments: topology::consumer_arguments(connector.options()),
            purpose: "reply",
        };
        let sink = Box::new(ReplySink {
            waiters: inbox.waiters.clone(),
        });
        let consumer = Supervised::start(connector, plan, sink, retry).await?;
        Ok(ReplyQueue {
            inbox,
            consumer: tokio::sync::Mutex::new(consumer),
        })
    }

    /// Deletes the queue and closes its connection.
    pub(crate) async fn close(&self) {
        let mut consumer = self.consumer.lock().await;
        consumer.stop();
        consumer.close().await;
    }
}

/// Sends replies and heartbeats for every server of a transport.
pub(crate) struct Replier {
    publisher: Arc<Publisher>,
    obsolete: Mutex<LruCache<String, Instant>>,
    retry_for: Duration,
}

impl Replier {
    pub(crate) fn new(publisher: Arc<Publisher>, retry_for: Duration) -> Replier {
        Replier {
            publisher,
            obsolete: Mutex::new(LruCache::new(
                NonZeroUsize::new(OBSOLETE_QUEUES).unwrap_or(NonZeroUsize::MIN),
            )),
            retry_for,
        }
    }

    fn is_obsolete(&self, reply_q: &str) -> bool {
        let mut cache = self.obsolete.lock().unwrap_or_else(|e| e.into_inner());
        match cache.get(reply_q) {
            Some(since) if since.elapsed() < OBSOLETE_FOR => true,
            Some(_) => {
                cache.pop(reply_q);
                false
            }
            None => false,
        }
    }
}

#[async_trait]
impl PublishReply for Replier {
    type Address = String;

    /// Publishes `reply` to the default exchange with routing key `reply_q`, mandatory.
    /// A final reply to a missing queue is retried; a heartbeat is not.
    async fn publish_reply(&self, reply_q: &String, reply: &Reply) -> Result<()> {
        if self.is_obsolete(reply_q) {
            tracing::debug!(reply_q, msg_id = %reply.msg_id, "reply queue known to be gone; reply dropped");
            return Ok(());
        }
        let body = reply.encode()?;
        let out = Outgoing {
            exchange: None,
            queue: None,
            routing_key: reply_q,
            body: &body,
            expiration: None,
            mandatory: true,
            kind: Kind::Reply,
        };
        let started = Instant::now();
        // Replies and heartbeats are bounded by the reply retry window, as oslo bounds
        // its retries of a reply: past it the caller has long given up. A publish
        // started inside the window may finish after it.
        let window_end = deadline_after(self.retry_for);
        loop {
            let deadline = window_end.max(tokio::time::Instant::now() + LAST_ATTEMPT);
            match self
                .publisher
                .publish_confirmed(&out, Retry::Forever, Some(deadline))
                .await
            {
                Err(Error::Undeliverable { .. })
                    if reply.ending && started.elapsed() < self.retry_for =>
                {
                    tokio::time::sleep(MISSING_QUEUE_RETRY_EVERY).await;
                }
                Err(e @ Error::Undeliverable { .. }) => {
                    if reply.ending {
                        tracing::warn!(reply_q, msg_id = %reply.msg_id, waited = ?started.elapsed(), "reply queue missing; reply dropped and the queue remembered as gone");
                        self.obsolete
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .put(reply_q.to_string(), Instant::now());
                    }
                    return Err(e);
                }
                other => return other,
            }
        }
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
