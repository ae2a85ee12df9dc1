//! The in-memory transport, `memory://` (alias `fake://`).
//!
//! Transports whose URLs name the same virtual host (`memory:///name`; none is the
//! default broker) share one in-process broker, like processes sharing a RabbitMQ.
//! Every message is JSON-encoded on send and decoded on receipt, exactly as the real
//! drivers do, so data that cannot travel fails here too.

mod broker;

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::mpsc;

use self::broker::{Body, Broker, Delivery, QueueRef, Route};
use crate::driver::{
    Capabilities, Disposition, Driver, DriverFactory, IncomingNotification, IncomingRequest,
    Listener, NotificationFormat, NotificationListener, PublishReply, ReplyInbox, RequestIntake,
    RequestListener, Retry, SendOptions, Settle,
};
use crate::wire::request::new_id;
use crate::wire::{ContextPacking, NotificationMessage, Priority, Reply, Request};
use crate::{Config, Error, Result, Target, TransportUrl};

/// Makes memory drivers; [`DriverRegistry::with_memory`](crate::DriverRegistry::with_memory)
/// registers it under `memory` and `fake`.
pub struct MemoryFactory;

#[async_trait]
impl DriverFactory for MemoryFactory {
    async fn connect(&self, url: &TransportUrl, config: &Config) -> Result<Arc<dyn Driver>> {
        if !url.hosts.iter().all(|h| h.hostname.is_none()) {
            return Err(Error::InvalidUrl {
                url: url.masked(),
                reason: "the memory transport takes no hosts; name a broker with a virtual host, e.g. memory:///mybroker".into(),
            });
        }
        let name = url.virtual_host.clone().unwrap_or_default();
        Ok(Arc::new(MemoryDriver::shared(
            &name,
            &config.default.control_exchange,
        )))
    }
}

/// The in-memory driver.
pub struct MemoryDriver {
    broker: Arc<Broker>,
    default_exchange: String,
    replies: OnceLock<ReplyInbox>,
}

impl MemoryDriver {
    /// A driver on the shared broker `name` ("" is the default one).
    pub fn shared(name: &str, default_exchange: &str) -> Self {
        MemoryDriver {
            broker: Broker::shared(name),
            default_exchange: default_exchange.to_string(),
            replies: OnceLock::new(),
        }
    }

    /// Publishes raw bytes to a topic as if a foreign client had sent them: lets tests
    /// show how malformed messages are handled.
    pub fn publish_raw(&self, exchange: Option<&str>, topic: &str, body: &[u8]) {
        let exchange = exchange.unwrap_or(&self.default_exchange);
        self.broker
            .publish(exchange, Route::Topic(topic), Arc::from(body));
    }

    fn exchange<'a>(&'a self, target: &'a Target) -> &'a str {
        target.exchange_or(&self.default_exchange)
    }

    /// The reply queue of this driver, created on the first call with a task that
    /// hands replies to the waiting calls.
    fn reply_queue(&self) -> &ReplyInbox {
        self.replies.get_or_init(|| {
            let inbox = ReplyInbox::new(format!("reply_{}", new_id()));
            let mut rx = self.broker.declare_reply_queue(&inbox.name);
            let waiters = inbox.waiters.clone();
            tokio::spawn(async move {
                while let Some(body) = rx.recv().await {
                    waiters.deliver_body(&body);
                }
            });
            inbox
        })
    }
}

impl Drop for MemoryDriver {
    fn drop(&mut self) {
        if let Some(inbox) = self.replies.get() {
            self.broker.delete_reply_queue(&inbox.name);
        }
    }
}

#[async_trait]
impl Driver for MemoryDriver {
    fn name(&self) -> &str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    async fn send(
        &self,
        target: &Target,
        mut request: Request,
        options: &SendOptions,
    ) -> Result<Value> {
        let topic = target.required_topic()?;
        let exchange = self.exchange(target);
        let route = match (&target.server, target.fanout) {
            (_, true) => Route::Fanout(topic),
            (Some(server), false) => Route::Server(topic, server),
            (None, false) => Route::Topic(topic),
        };
        let Some(timeout) = options.timeout else {
            let body = request.encode(ContextPacking::Flattened)?;
            let routed = self.broker.publish(exchange, route, body.into());
            return check_routed(routed, options, exchange, target).map(|()| Value::Null);
        };
        let pending = self
            .reply_queue()
            .start_call(&mut request, options.call_monitor_timeout);
        let body = request.encode(ContextPacking::Flattened)?;
        let routed = self.broker.publish(exchange, route, body.into());
        check_routed(routed, options, exchange, target)?;
        pending
            .wait(timeout, options.call_monitor_timeout, topic)
            .await
    }

    async fn send_notification(
        &self,
        target: &Target,
        message: NotificationMessage,
        format: NotificationFormat,
        _retry: Retry,
    ) -> Result<()> {
        let topic = target.required_topic()?;
        let body = message.encode(ContextPacking::Flattened, format == NotificationFormat::V2)?;
        self.broker
            .publish(self.exchange(target), Route::Topic(topic), body.into());
        Ok(())
    }

    async fn listen(&self, target: &Target) -> Result<Box<RequestListener>> {
        let topic = target.required_topic()?;
        let server = target
            .server
            .as_deref()
            .ok_or_else(|| Error::invalid_target("a server target needs a server", target))?;
        let exchange = self.exchange(target);
        let queues = vec![
            self.broker.topic_queue(exchange, topic, None),
            self.broker.server_queue(exchange, topic, server),
        ];
        Ok(Box::new(MemoryRequestListener {
            consumer: Consumer::start(queues),
            intake: RequestIntake::new(Arc::new(MemoryReplies(self.broker.clone()))),
        }))
    }

    async fn listen_for_notifications(
        &self,
        targets_and_priorities: &[(Target, Priority)],
        pool: Option<&str>,
    ) -> Result<Box<NotificationListener>> {
        let mut queues = Vec::new();
        for (target, priority) in targets_and_priorities {
            let topic = format!("{}.{}", target.required_topic()?, priority.as_str());
            queues.push(self.broker.topic_queue(self.exchange(target), &topic, pool));
        }
        Ok(Box::new(MemoryNotificationListener {
            consumer: Consumer::start(queues),
        }))
    }
}

fn check_routed(
    routed: bool,
    options: &SendOptions,
    exchange: &str,
    target: &Target,
) -> Result<()> {
    if routed || !options.at_least_once {
        return Ok(());
    }
    let topic = target.topic.clone().unwrap_or_default();
    Err(Error::Undeliverable {
        exchange: exchange.to_string(),
        routing_key: match &target.server {
            Some(s) => format!("{topic}.{s}"),
            None => topic,
        },
    })
}

/// One consumer subscribed to several queues.
struct Consumer {
    id: u64,
    queues: Vec<QueueRef>,
    rx: mpsc::UnboundedReceiver<Delivery>,
}

impl Consumer {
    fn start(queues: Vec<QueueRef>) -> Self {
        let id = broker::next_consumer_id();
        let (tx, rx) = mpsc::unbounded_channel();
        for q in &queues {
            broker::subscribe(q, id, tx.clone());
        }
        Consumer { id, queues, rx }
    }

    /// Stops new deliveries; those already handed over stay readable.
    fn stop(&mut self) {
        for q in self.queues.drain(..) {
            broker::unsubscribe(&q, self.id);
        }
    }

    /// Puts undelivered messages back, as a broker does with a closed consumer's
    /// unacknowledged messages.
    fn requeue_rest(&mut self) {
        self.stop();
        self.rx.close();
        while let Ok(d) = self.rx.try_recv() {
            broker::push(&d.queue, d.body);
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.requeue_rest();
    }
}

struct MemoryRequestListener {
    consumer: Consumer,
    intake: RequestIntake<MemoryReplies>,
}

#[async_trait]
impl Listener<IncomingRequest> for MemoryRequestListener {
    async fn next(&mut self) -> Option<IncomingRequest> {
        loop {
            let delivery = self.consumer.rx.recv().await?;
            match Request::decode(&delivery.body) {
                Ok(request) => {
                    tracing::trace!(method = %request.method, bytes = delivery.body.len(), "request received");
                    if let Some(incoming) = self.intake.admit(request) {
                        return Some(incoming);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "malformed RPC request rejected"),
            }
        }
    }

    async fn stop(&mut self) {
        self.consumer.stop();
    }

    async fn cleanup(&mut self) {
        self.consumer.requeue_rest();
    }

    fn backlog(&self) -> Option<usize> {
        Some(self.consumer.rx.len())
    }
}

/// Publishes replies to the broker's reply queues.
struct MemoryReplies(Arc<Broker>);

#[async_trait]
impl PublishReply for MemoryReplies {
    type Address = String;

    async fn publish_reply(&self, reply_q: &String, reply: &Reply) -> Result<()> {
        let body: Body = reply.encode()?.into();
        if self.0.publish_reply(reply_q, body) {
            Ok(())
        } else {
            Err(Error::Undeliverable {
                exchange: String::new(),
                routing_key: reply_q.clone(),
            })
        }
    }
}

struct MemoryNotificationListener {
    consumer: Consumer,
}

#[async_trait]
impl Listener<IncomingNotification> for MemoryNotificationListener {
    async fn next(&mut self) -> Option<IncomingNotification> {
        loop {
            let delivery = self.consumer.rx.recv().await?;
            match NotificationMessage::decode(&delivery.body) {
                Ok(message) => {
                    tracing::trace!(event_type = %message.event_type, bytes = delivery.body.len(), "notification received");
                    return Some(IncomingNotification {
                        message,
                        settle: Box::new(MemorySettle {
                            body: Some(delivery.body),
                            queue: delivery.queue,
                        }),
                    });
                }
                Err(e) => tracing::warn!(error = %e, "malformed notification rejected"),
            }
        }
    }

    async fn stop(&mut self) {
        self.consumer.stop();
    }

    async fn cleanup(&mut self) {
        self.consumer.requeue_rest();
    }
}

/// Settles one notification; dropped unsettled (a lost handler), it is requeued as a
/// broker does with an unacknowledged message.
struct MemorySettle {
    body: Option<Body>,
    queue: QueueRef,
}

#[async_trait]
impl Settle for MemorySettle {
    async fn settle(mut self: Box<Self>, disposition: Disposition) -> Result<()> {
        let body = self.body.take();
        if let (Disposition::Requeue, Some(body)) = (disposition, body) {
            broker::push(&self.queue, body);
        }
        Ok(())
    }
}

impl Drop for MemorySettle {
    fn drop(&mut self) {
        if let Some(body) = self.body.take() {
            broker::push(&self.queue, body);
        }
    }
}
