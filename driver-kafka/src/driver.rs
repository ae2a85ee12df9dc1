//! [`KafkaDriver`]: notifications as Python oslo.messaging's Kafka driver writes and
//! reads them, and RPC over topics of this driver's own.

use std::sync::Arc;

use async_trait::async_trait;
use messaging_core::driver::{
    Capabilities, ChannelListener, Driver, NotificationFormat, NotificationListener, ReplyInbox,
    RequestListener, SendOptions,
};
use messaging_core::wire::{ContextPacking, NotificationMessage, Priority, Request};
use messaging_core::{Config, Error, Result, Retry, Target, TransportUrl};
use serde_json::Value;
use tokio::sync::{Mutex, OnceCell, mpsc};

use crate::admin::Topics;
use crate::consumer::{Consumer, Consumers, Start, Subscription};
use crate::incoming::{NotificationHandler, ReplyHandler, RequestHandler};
use crate::naming::{self, RpcTopics};
use crate::options::KafkaOptions;
use crate::producer::{Missing, Producer};
use crate::telemetry::Publish;

/// The Kafka driver of one transport.
///
/// One producer sends everything (requests, replies, notifications); each server,
/// listener and the reply topic has consumers of its own. librdkafka reconnects to
/// brokers by itself; sends wait for the broker's delivery report.
pub struct KafkaDriver {
    options: Arc<KafkaOptions>,
    topics: Arc<Topics>,
    producer: Arc<Producer>,
    replies: OnceCell<ReplyTopic>,
}

impl std::fmt::Debug for KafkaDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaDriver")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The transport's reply topic and its consumer.
struct ReplyTopic {
    inbox: ReplyInbox,
    consumer: Mutex<Consumer>,
}

impl KafkaDriver {
    /// A driver for `url` configured by `config` (`[oslo_messaging_kafka]` with the
    /// URL's query parameters laid over it). Connects in the background.
    pub fn new(url: &TransportUrl, config: &Config) -> Result<KafkaDriver> {
        let options = Arc::new(KafkaOptions::resolve(url, config)?);
        let topics = Arc::new(Topics::new(options.clone())?);
        let producer = Arc::new(Producer::new(options.clone(), topics.clone())?);
        Ok(KafkaDriver {
            options,
            topics,
            producer,
            replies: OnceCell::new(),
        })
    }

    fn vhost(&self) -> Option<&str> {
        self.options.virtual_host.as_deref()
    }

    fn rpc_topics(&self, target: &Target) -> Result<RpcTopics> {
        let exchange = target.exchange_or(&self.options.control_exchange);
        RpcTopics::of(target, exchange, self.vhost())
    }

    async fn reply_topic(&self) -> Result<&ReplyTopic> {
        self.replies
            .get_or_try_init(|| async {
                let inbox = ReplyInbox::new(naming::reply_topic(self.vhost()));
                self.topics.ensure(&inbox.name).await?;
                let consumer = Consumer::start(
                    &self.options,
                    Subscription::Tail {
                        topics: vec![inbox.name.clone()],
                    },
                    ReplyHandler {
                        waiters: inbox.waiters.clone(),
                    },
                )
                .await?;
                Ok::<_, Error>(ReplyTopic {
                    inbox,
                    consumer: Mutex::new(consumer),
                })
            })
            .await
    }
}

#[async_trait]
impl Driver for KafkaDriver {
    fn name(&self) -> &str {
        "kafka"
    }

    fn capabilities(&self) -> Capabilities {
        let mut capabilities = Capabilities::ALL;
        // Notification topics ignore the exchange, as in oslo.
        capabilities.isolated_exchanges = false;
        // Records are ordered per partition only.
        capabilities.total_order = false;
        capabilities
    }

    async fn send(
        &self,
        target: &Target,
        mut request: Request,
        options: &SendOptions,
    ) -> Result<Value> {
        let topics = self.rpc_topics(target)?;
        let destination = topics.destination(target);
        let deliver = |body: Vec<u8>| async move {
            match self
                .producer
                .send(
                    destination,
                    &body,
                    Publish::Rpc,
                    Missing::Refuse,
                    options.retry,
                )
                .await
            {
                Err(Error::Undeliverable { .. }) if options.at_least_once => {
                    Err(Error::Undeliverable {
                        exchange: target.exchange_or(&self.options.control_exchange).into(),
                        routing_key: destination.to_string(),
                    })
                }
                // As on RabbitMQ, a request nobody has ever listened for is dropped.
                Err(Error::Undeliverable { .. }) => {
                    tracing::warn!(
                        topic = destination,
                        "no server has listened on this Kafka topic; request dropped"
                    );
                    Ok(())
                }
                other => other,
            }
        };
        let Some(timeout) = options.timeout else {
            deliver(request.encode(ContextPacking::Nested)?).await?;
            return Ok(Value::Null);
        };
        let pending = self
            .reply_topic()
            .await?
            .inbox
            .start_call(&mut request, options.call_monitor_timeout);
        deliver(request.encode(ContextPacking::Nested)?).await?;
        pending
            .wait(
                timeout,
                options.call_monitor_timeout,
                target.required_topic()?,
            )
            .await
    }

    async fn send_notification(
        &self,
        target: &Target,
        message: NotificationMessage,
        _format: NotificationFormat,
        retry: Retry,
    ) -> Result<()> {
        let topic = naming::notification_topic(target.required_topic()?, self.vhost());
        if !naming::is_valid_topic(&topic) {
            return Err(Error::invalid_target(
                format!("{topic:?} is not a valid Kafka topic name"),
                target,
            ));
        }
        // oslo's Kafka driver always writes the 2.0 envelope with a nested context.
        let body = message.encode(ContextPacking::Nested, true)?;
        let sent = self
            .producer
            .send(&topic, &body, Publish::Notification, Missing::Create, retry)
            .await;
        if let Err(e) = &sent {
            tracing::error!(topic, event_type = %message.event_type, error = %e, "notification not delivered");
        }
        sent
    }

    async fn listen(&self, target: &Target) -> Result<Box<RequestListener>> {
        let failure = |reason: messaging_core::Detail| Error::ListenFailure {
            target: target.to_string(),
            reason,
        };
        if target.server.as_deref().is_none_or(str::is_empty) {
            return Err(failure("a server target needs a server".into()));
        }
        let topics = self.rpc_topics(target)?;
        let server_topic = topics.server.clone().expect("a server target");
        for topic in [&topics.shared, &server_topic, &topics.fanout] {
            self.topics
                .ensure(topic)
                .await
                .map_err(|e| failure(e.into()))?;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let handler = || RequestHandler::new(tx.clone(), self.producer.clone());
        let group = |topic: &String| Subscription::Group {
            group: topic.clone(),
            topics: vec![topic.clone()],
            start: Start::Earliest,
        };
        let (shared, server, fanout) = tokio::join!(
            Consumer::start(&self.options, group(&topics.shared), handler()),
            Consumer::start(&self.options, group(&server_topic), handler()),
            Consumer::start(
                &self.options,
                Subscription::Tail {
                    topics: vec![topics.fanout.clone()],
                },
                handler()
            ),
        );
        let mut started = Vec::new();
        let mut error = None;
        for consumer in [shared, server, fanout] {
            match consumer {
                Ok(c) => started.push(c),
                Err(e) => error = Some(e),
            }
        }
        if let Some(e) = error {
            for mut c in started {
                c.close().await;
            }
            return Err(e);
        }
        Ok(Box::new(ChannelListener::new(rx, Consumers(started))))
    }

    async fn listen_for_notifications(
        &self,
        targets_and_priorities: &[(Target, Priority)],
        pool: Option<&str>,
    ) -> Result<Box<NotificationListener>> {
        let mut topics: Vec<String> = Vec::new();
        for (target, priority) in targets_and_priorities {
            let topic = naming::notification_topic(
                &format!("{}.{}", target.required_topic()?, priority.as_str()),
                self.vhost(),
            );
            if !naming::is_valid_topic(&topic) {
                return Err(Error::invalid_target(
                    format!("{topic:?} is not a valid Kafka topic name"),
                    target,
                ));
            }
            if !topics.contains(&topic) {
                self.topics.ensure(&topic).await?;
                topics.push(topic);
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let group = pool
            .unwrap_or(&self.options.kafka.consumer_group)
            .to_string();
        let consumer = Consumer::start(
            &self.options,
            Subscription::Group {
                group,
                topics,
                start: if self.options.kafka.auto_offset_reset == "latest" {
                    Start::Latest
                } else {
                    Start::Earliest
                },
            },
            NotificationHandler {
                tx,
                commit_before_dispatch: self.options.kafka.commit_before_dispatch,
                auto_commit: self.options.kafka.enable_auto_commit,
            },
        )
        .await?;
        Ok(Box::new(ChannelListener::new(
            rx,
            Consumers(vec![consumer]),
        )))
    }

    async fn cleanup(&self) {
        if let Some(replies) = self.replies.get() {
            replies.consumer.lock().await.close().await;
            if self.options.kafka.delete_reply_topics {
                self.topics.delete(&replies.inbox.name).await;
            }
        }
        let producer = self.producer.clone();
        let limit = self.options.delivery_timeout();
        let _ = tokio::task::spawn_blocking(move || producer.flush(limit)).await;
    }
}
