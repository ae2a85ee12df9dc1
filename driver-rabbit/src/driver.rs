//! [`RabbitDriver`]: requests, replies and notifications over RabbitMQ, laid out as
//! Python oslo.messaging lays them out.

use std::sync::Arc;

use async_trait::async_trait;
use messaging_core::driver::{
    Capabilities, ChannelListener, Driver, NotificationFormat, NotificationListener,
    RequestListener, SendOptions, deadline_after,
};
use messaging_core::wire::request::new_id;
use messaging_core::wire::{ContextPacking, NotificationMessage, Priority, Request};
use messaging_core::{Config, Error, Result, Retry, Target, TransportUrl};
use serde_json::Value;
use tokio::sync::{OnceCell, mpsc};

use crate::connection::Connector;
use crate::consumer::{ConsumerPlan, Supervised};
use crate::incoming::{Backlog, NotificationSink, RequestSink, ServerListener};
use crate::options::RabbitOptions;
use crate::publisher::{Outgoing, Publisher, check_confirmation};
use crate::queue_manager::QueueManager;
use crate::reply::{Replier, ReplyQueue};
use crate::telemetry::Kind;
use crate::topology::{self, ExchangeSpec, QueueSpec};

/// The RabbitMQ driver of one transport.
///
/// Connections are opened when first needed: one for sending (requests, replies,
/// notifications, over a pool of confirm-mode channels), one for the reply queue, and
/// one per server or listener. Each is supervised and reconnected on loss.
pub struct RabbitDriver {
    options: Arc<RabbitOptions>,
    connector: Arc<Connector>,
    publisher: Arc<Publisher>,
    replier: Arc<Replier>,
    replies: OnceCell<ReplyQueue>,
    /// Stable reply and fanout queue names (`use_queue_manager`), else random ones.
    queue_names: Option<QueueManager>,
}

impl std::fmt::Debug for RabbitDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitDriver")
            .field("connector", &self.connector)
            .finish_non_exhaustive()
    }
}

impl RabbitDriver {
    /// A driver for `url` configured by `config` (`[oslo_messaging_rabbit]` with the
    /// URL's query parameters laid over it). Does not connect yet.
    pub fn new(url: &TransportUrl, config: &Config) -> Result<RabbitDriver> {
        let options = Arc::new(RabbitOptions::resolve(url, config)?);
        let connector = Arc::new(Connector::new(url, options.clone())?);
        let publisher = Arc::new(Publisher::new(connector.clone()));
        let replier = Arc::new(Replier::new(
            publisher.clone(),
            options.missing_consumer_retry(),
        ));
        let queue_names = if options.rabbit.use_queue_manager {
            let r = &options.rabbit;
            Some(QueueManager::new(&r.hostname, &r.processname).map_err(|e| {
                let message = format!(
                    "[oslo_messaging_rabbit] use_queue_manager: cannot use its counter file: {e}"
                );
                Error::Config(
                    messaging_core::Detail::new(messaging_core::ErrorKind::Config, message)
                        .with_source(e),
                )
            })?)
        } else {
            None
        };
        Ok(RabbitDriver {
            options,
            connector,
            publisher,
            replier,
            replies: OnceCell::new(),
            queue_names,
        })
    }

    /// The suffix of a new reply or fanout queue's name: `<hostname>:<processname>:<N>`
    /// with the queue manager, else a random hex id.
    async fn queue_suffix(&self) -> Result<String> {
        use messaging_core::{Detail, ErrorKind};
        let counter_error = |kind, e: &dyn std::fmt::Display| {
            Detail::new(kind, format!("the queue manager's counter file: {e}"))
        };
        match &self.queue_names {
            // The counter file is locked and rewritten: file I/O off the runtime's workers.
            Some(manager) => {
                let manager = manager.clone();
                tokio::task::spawn_blocking(move || manager.next_name())
                    .await
                    .map_err(|e| {
                        Error::Transport(counter_error(ErrorKind::Other, &e).with_source(e))
                    })?
                    .map_err(|e| Error::Transport(counter_error(ErrorKind::Io, &e).with_source(e)))
            }
            None => Ok(new_id()),
        }
    }

    async fn reply_queue(&self, retry: Retry) -> Result<&ReplyQueue> {
        self.replies
            .get_or_try_init(|| async {
                let name = format!("reply_{}", self.queue_suffix().await?);
                ReplyQueue::start(self.connector.clone(), name, retry).await
            })
            .await
    }

    fn exchange<'a>(&'a self, target: &'a Target) -> &'a str {
        target.exchange_or(&self.options.control_exchange)
    }
}

#[async_trait]
impl Driver for RabbitDriver {
    fn name(&self) -> &str {
        "rabbit"
    }

    fn capabilities(&self) -> Capabilities {
        let mut capabilities = Capabilities::ALL;
        capabilities.isolated_exchanges = false;
        capabilities
    }

    async fn send(
        &self,
        target: &Target,
        mut request: Request,
        options: &SendOptions,
    ) -> Result<Value> {
        let topic = target.required_topic()?;
        let routed;
        let (exchange, routing_key) = if target.fanout {
            (ExchangeSpec::fanout(topic, &self.options), "")
        } else {
            let exchange = ExchangeSpec::topic(self.exchange(target), &self.options);
            match &target.server {
                Some(server) => {
                    routed = format!("{topic}.{server}");
                    (exchange, routed.as_str())
                }
                None => (exchange, topic),
            }
        };
        let outgoing = |body| Outgoing {
            exchange: Some(&exchange),
            queue: None,
            routing_key,
            body,
            expiration: options.timeout,
            mandatory: options.at_least_once,
            kind: Kind::Rpc,
        };
        let Some(timeout) = options.timeout else {
            let body = request.encode(ContextPacking::Flattened)?;
            self.publisher
                .publish_confirmed(&outgoing(&body), options.retry, None)
                .await?;
            return Ok(Value::Null);
        };
        // The call's timeout bounds all of it: connecting, publishing, the reply.
        let deadline = deadline_after(timeout);
        let replies = match tokio::time::timeout_at(deadline, self.reply_queue(options.retry)).await
        {
            Ok(replies) => replies?,
            Err(_) => {
                return Err(Error::Timeout(format!(
                    "no reply on topic {topic} within {timeout:?}: the reply queue could not be set up in that time (nodes {})",
                    self.connector.node_labels()
                ).into()));
            }
        };
        let pending = replies
            .inbox
            .start_call(&mut request, options.call_monitor_timeout);
        let body = request.encode(ContextPacking::Flattened)?;
        let out = outgoing(&body);
        // A publish cut short by the call's deadline is the call timing out (as oslo's
        // MessagingTimeout), whatever step it was at.
        let timed_out = |e: Error| {
            if tokio::time::Instant::now() >= deadline {
                let message = format!("no reply on topic {topic} within {timeout:?}: {e}");
                Error::Timeout(messaging_core::Detail::wrapping(message, e))
            } else {
                e
            }
        };
        let confirm = self
            .publisher
            .publish(&out, options.retry, Some(deadline))
            .await
            .map_err(timed_out)?;
        let reply = pending.wait_until(deadline, timeout, options.call_monitor_timeout, topic);
        tokio::pin!(reply);
        // The confirmation and the reply race: a reply proves delivery, while a return
        // or a nack fails the call at once.
        tokio::select! {
            biased;
            result = &mut reply => return result,
            confirmation = confirm.outcome() => match confirmation {
                Ok(c) => check_confirmation(c, &out)?,
                Err(e) => {
                    tracing::warn!(error = %e, "no confirmation for a request; publishing again");
                    self.publisher
                        .publish_confirmed(&out, options.retry, Some(deadline))
                        .await
                        .map_err(timed_out)?;
                }
            },
        }
        reply.await
    }

    async fn send_notification(
        &self,
        target: &Target,
        message: NotificationMessage,
        format: NotificationFormat,
        retry: Retry,
    ) -> Result<()> {
        let routing_key = target.required_topic()?;
        let exchange = ExchangeSpec::topic(self.exchange(target), &self.options);
        // As oslo: the default queue is declared so notifications wait for a consumer.
        let queue = topology::service_queue(
            routing_key,
            vec![(exchange.clone(), routing_key.to_string())],
            &self.options,
        );
        let body = message.encode(ContextPacking::Flattened, format == NotificationFormat::V2)?;
        let out = Outgoing {
            exchange: Some(&exchange),
            queue: Some(&queue),
            routing_key,
            body: &body,
            expiration: None,
            mandatory: false,
            kind: Kind::Notification,
        };
        self.publisher.publish_confirmed(&out, retry, None).await
    }

    async fn listen(&self, target: &Target) -> Result<Box<RequestListener>> {
        let failure = |reason: messaging_core::Detail| Error::ListenFailure {
            target: target.to_string(),
            reason,
        };
        let topic = target.required_topic()?;
        let server = target
            .server
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| failure("a server target needs a server".into()))?;
        let exchange = ExchangeSpec::topic(self.exchange(target), &self.options);
        let directed = format!("{topic}.{server}");
        let queues = vec![
            topology::service_queue(topic, vec![(exchange.clone(), topic.into())], &self.options),
            topology::service_queue(&directed, vec![(exchange, directed.clone())], &self.options),
            if self.options.rabbit.rabbit_stream_fanout {
                topology::stream_fanout_queue(topic, &self.options)
            } else {
                topology::transient_queue(
                    &format!(
                        "{}_{}",
                        topology::fanout_exchange(topic),
                        self.queue_suffix().await?
                    ),
                    vec![(ExchangeSpec::fanout(topic, &self.options), topic.into())],
                    &self.options,
                )
            },
        ];
        let (tx, rx) = mpsc::unbounded_channel();
        // With a prefetch count, the requests waiting for the server stay under it too.
        let backlog = match self.options.rabbit.rabbit_qos_prefetch_count {
            0 => None,
            n => Some(Backlog::new(usize::from(n))),
        };
        let sink = Box::new(RequestSink::new(tx, self.replier.clone(), backlog.clone()));
        let consumer = Supervised::start(
            self.connector.clone(),
            self.plan(queues, "rpc server"),
            sink,
            Retry::Forever,
        )
        .await
        .map_err(|e| failure(e.into()))?;
        Ok(Box::new(ServerListener {
            inner: ChannelListener::new(rx, consumer),
            backlog,
        }))
    }

    async fn listen_for_notifications(
        &self,
        targets_and_priorities: &[(Target, Priority)],
        pool: Option<&str>,
    ) -> Result<Box<NotificationListener>> {
        let mut queues: Vec<QueueSpec> = Vec::new();
        for (target, priority) in targets_and_priorities {
            let routing_key = format!("{}.{}", target.required_topic()?, priority.as_str());
            let exchange = ExchangeSpec::topic(self.exchange(target), &self.options);
            let name = pool.unwrap_or(&routing_key).to_string();
            let binding = (exchange, routing_key);
            match queues.iter_mut().find(|q| q.name == name) {
                Some(q) if q.bindings.contains(&binding) => {}
                Some(q) => q.bindings.push(binding),
                None => queues.push(topology::service_queue(&name, vec![binding], &self.options)),
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let consumer = Supervised::start(
            self.connector.clone(),
            self.plan(queues, "notification listener"),
            Box::new(NotificationSink { tx }),
            Retry::Forever,
        )
        // The core names the listener's targets in its ListenFailure.
        .await?;
        Ok(Box::new(ChannelListener::new(rx, consumer)))
    }

    async fn cleanup(&self) {
        if let Some(replies) = self.replies.get() {
            replies.close().await;
        }
        self.publisher.close().await;
    }
}

impl Drop for RabbitDriver {
    fn drop(&mut self) {
        // The reply queue's consumer closes itself when dropped; the send connection
        // needs an async close.
        let publisher = self.publisher.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { publisher.close().await });
        }
    }
}

impl RabbitDriver {
    fn plan(&self, queues: Vec<QueueSpec>, purpose: &'static str) -> ConsumerPlan {
        ConsumerPlan {
            queues,
            no_ack: false,
            prefetch: self.options.rabbit.rabbit_qos_prefetch_count,
            arguments: topology::consumer_arguments(&self.options),
            purpose,
        }
    }
}
