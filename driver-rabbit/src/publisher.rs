//! The send side: one connection per transport carrying a pool of channels in
//! publisher-confirm mode, reconnected on demand, with each exchange (and the default
//! notification queues) declared once per connection.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use messaging_core::{Error, Result, Retry};

use crate::compression::{self, Compression};
use crate::connection::Connector;
use crate::topology::{Declarer, ExchangeSpec, QueueSpec};

/// One message to publish.
#[derive(Debug)]
pub(crate) struct Outgoing<'a> {
    /// Declared (once per connection) before the first publish to it; `None` for the
    /// default exchange.
    pub exchange: Option<&'a ExchangeSpec>,
    /// A queue to declare and bind before the first publish (notifications).
    pub queue: Option<&'a QueueSpec>,
    pub routing_key: &'a str,
    pub body: &'a [u8],
    /// Per-message TTL (AMQP `expiration`), set on calls.
    pub expiration: Option<Duration>,
    /// Return the message if no queue takes it.
    pub mandatory: bool,
}

impl Outgoing<'_> {
    fn exchange_name(&self) -> &str {
        self.exchange.map_or("", |x| x.name.as_str())
    }
}

/// How a confirmed publish ended.
pub(crate) fn check_confirmation(confirmation: Confirmation, out: &Outgoing<'_>) -> Result<()> {
    match confirmation {
        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
        Confirmation::Ack(Some(_)) | Confirmation::Nack(Some(_)) => Err(Error::Undeliverable {
            exchange: out.exchange_name().to_string(),
            routing_key: out.routing_key.to_string(),
        }),
        Confirmation::Nack(None) => Err(Error::DeliveryFailure(format!(
            "the broker refused the message for exchange {:?} with routing key {:?}",
            out.exchange_name(),
            out.routing_key
        ))),
    }
}

struct Session {
    connection: Connection,
    node: String,
    slots: Vec<Slot>,
    next: AtomicUsize,
    opening: tokio::sync::Mutex<()>,
    declare_channel: tokio::sync::Mutex<Option<Channel>>,
    declared: Mutex<Declared>,
}

impl Session {
    fn alive(&self) -> bool {
        self.connection.status().connected()
    }

    /// A channel to publish on, fill-first: the first whose unconfirmed publishes are
    /// below [`CHANNEL_FILL`], so light traffic rides one channel (the broker then
    /// confirms in batches) and heavy traffic spreads over up to `rpc_conn_pool_size`.
    async fn channel(&self) -> lapin::Result<(Channel, InFlight)> {
        let slot = self
            .slots
            .iter()
            .find(|s| s.in_flight.load(Ordering::Relaxed) < CHANNEL_FILL)
            .unwrap_or_else(|| {
                &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()]
            });
        let in_flight = InFlight::enter(&slot.in_flight);
        if let Some(c) = slot.open_channel() {
            return Ok((c, in_flight));
        }
        let _one_at_a_time = self.opening.lock().await;
        if let Some(c) = slot.open_channel() {
            return Ok((c, in_flight));
        }
        let channel = self.connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        *slot.channel.lock().unwrap_or_else(|e| e.into_inner()) = Some(channel.clone());
        Ok((channel, in_flight))
    }

    /// Declares what `out` needs unless this connection already did.
    async fn declare(&self, out: &Outgoing<'_>) -> lapin::Result<()> {
        let pending = {
            let declared = self.declared.lock().unwrap_or_else(|e| e.into_inner());
            out.exchange
                .is_some_and(|x| !declared.exchanges.contains(&x.name))
                || out
                    .queue
                    .is_some_and(|q| !declared.queues.contains(&q.name))
        };
        if !pending {
            return Ok(());
        }
        let mut slot = self.declare_channel.lock().await;
        let channel = match slot.as_ref().filter(|c| c.status().connected()) {
            Some(c) => c.clone(),
            None => self.connection.create_channel().await?,
        };
        let mut declarer = Declarer::new(&self.connection, channel);
        let result: lapin::Result<()> = async {
            if let Some(x) = out.exchange {
                declarer.exchange(x).await?;
            }
            if let Some(q) = out.queue {
                declarer.queue(q).await?;
            }
            Ok(())
        }
        .await;
        let channel = declarer.into_channel();
        *slot = Some(channel).filter(|c| c.status().connected());
        result?;
        let mut declared = self.declared.lock().unwrap_or_else(|e| e.into_inner());
        declared
            .exchanges
            .extend(out.exchange.map(|x| x.name.clone()));
        declared.queues.extend(out.queue.map(|q| q.name.clone()));
        Ok(())
    }
}

/// Unconfirmed publishes a channel takes before the next channel is used.
const CHANNEL_FILL: usize = 256;

/// One publishing channel of the pool.
#[derive(Default)]
struct Slot {
    channel: Mutex<Option<Channel>>,
    in_flight: Arc<AtomicUsize>,
}

impl Slot {
    fn open_channel(&self) -> Option<Channel> {
        self.channel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|c| c.status().connected())
    }
}

/// Counts one unconfirmed publish on a slot until dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(counter: &Arc<AtomicUsize>) -> InFlight {
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A publish's confirmation still to come.
pub(crate) type Confirm = futures::future::BoxFuture<'static, lapin::Result<Confirmation>>;

/// What a connection has declared, by name.
#[derive(Default)]
struct Declared {
    exchanges: HashSet<String>,
    queues: HashSet<String>,
}

/// Publishes with confirms, reconnecting as `retry` allows.
pub(crate) struct Publisher {
    connector: Arc<Connector>,
    compression: Option<Compression>,
    /// oslo's (kombu's) message properties, made once.
    properties: BasicProperties,
    pool_size: usize,
    session: Mutex<Option<Arc<Session>>>,
    connecting: tokio::sync::Mutex<()>,
}

impl Publisher {
    pub(crate) fn new(connector: Arc<Connector>) -> Publisher {
        let options = connector.options().clone();
        let mut headers = FieldTable::default();
        if let Some(c) = options.compression {
            headers.insert(
                compression::HEADER.into(),
                AMQPValue::LongString(c.header_value().into()),
            );
        }
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_content_encoding("utf-8".into())
            .with_delivery_mode(2)
            .with_priority(0)
            .with_headers(headers);
        Publisher {
            compression: options.compression,
            properties,
            pool_size: options.rabbit.rpc_conn_pool_size.max(1),
            connector,
            session: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    fn current(&self) -> Option<Arc<Session>> {
        self.session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|s| s.alive())
    }

    async fn session(&self, retry: Retry) -> Result<Arc<Session>> {
        if let Some(s) = self.current() {
            return Ok(s);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(s) = self.current() {
            return Ok(s);
        }
        let (connection, node) = self.connector.connect(retry, "send").await?;
        let session = Arc::new(Session {
            connection,
            node,
            slots: (0..self.pool_size).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
            opening: tokio::sync::Mutex::new(()),
            declare_channel: tokio::sync::Mutex::new(None),
            declared: Mutex::new(Declared::default()),
        });
        *self.session.lock().unwrap_or_else(|e| e.into_inner()) = Some(session.clone());
        Ok(session)
    }

    fn properties(&self, out: &Outgoing<'_>) -> BasicProperties {
        match out.expiration {
            Some(ttl) => self
                .properties
                .clone()
                .with_expiration(ttl.as_millis().to_string().into()),
            None => self.properties.clone(),
        }
    }

    /// Publishes and returns the confirmation still to come, so a caller may wait for
    /// it alongside something else (a call waits for its reply at the same time).
    pub(crate) async fn publish(&self, out: &Outgoing<'_>, retry: Retry) -> Result<Confirm> {
        let compressed;
        let body = match self.compression {
            Some(c) => {
                compressed = c.compress(out.body);
                compressed.as_slice()
            }
            None => out.body,
        };
        let properties = self.properties(out);
        let mut failures: u32 = 0;
        loop {
            let session = self.session(retry).await?;
            let attempt = async {
                session.declare(out).await?;
                let (channel, in_flight) = session.channel().await?;
                let confirm = channel
                    .basic_publish(
                        out.exchange_name().into(),
                        out.routing_key.into(),
                        BasicPublishOptions {
                            mandatory: out.mandatory,
                            ..Default::default()
                        },
                        body,
                        properties.clone(),
                    )
                    .await?;
                Ok::<Confirm, lapin::Error>(Box::pin(async move {
                    let _counted = in_flight;
                    confirm.await
                }))
            };
            let error = match attempt.await {
                Ok(confirm) => return Ok(confirm),
                Err(e) => e,
            };
            if session.alive() {
                // The broker refused something on a live connection (a 406 on declare,
                // a missing exchange): retrying will not help.
                return Err(Error::Transport(format!(
                    "publishing to exchange {:?} with routing key {:?} on {}: {}",
                    out.exchange_name(),
                    out.routing_key,
                    session.node,
                    crate::topology::describe(&error)
                )));
            }
            failures += 1;
            if !retry.allows_another(failures) {
                return Err(Error::DeliveryFailure(format!(
                    "lost the connection to {} while publishing, {failures} time(s) (nodes {}): {error}",
                    session.node,
                    self.connector.node_labels()
                )));
            }
            tracing::warn!(node = %session.node, %error, "connection lost while publishing; reconnecting");
            tokio::time::sleep(self.connector.options().reconnect_delay()).await;
        }
    }

    /// Publishes and waits for the broker's confirmation: a returned (mandatory)
    /// message is [`Error::Undeliverable`]. A connection lost before the confirmation
    /// arrives means publishing again (the peer drops the copy by `_unique_id`), and so
    /// does a refusal (a nack: a quorum queue without a leader during a failover), after
    /// the retry interval, as `retry` allows.
    pub(crate) async fn publish_confirmed(&self, out: &Outgoing<'_>, retry: Retry) -> Result<()> {
        let mut failures: u32 = 0;
        let mut refusal_waits = self.connector.options().retry_intervals();
        loop {
            let confirm = self.publish(out, retry).await?;
            match confirm.await {
                Ok(Confirmation::Nack(None)) => {
                    let refused = check_confirmation(Confirmation::Nack(None), out);
                    failures += 1;
                    if !retry.allows_another(failures) {
                        return refused;
                    }
                    let wait = refusal_waits.next().unwrap_or(Duration::from_secs(1));
                    tracing::warn!(
                        exchange = out.exchange_name(),
                        routing_key = out.routing_key,
                        retry_in = ?wait,
                        "the broker refused the message; publishing again"
                    );
                    tokio::time::sleep(wait).await;
                }
                Ok(confirmation) => return check_confirmation(confirmation, out),
                Err(e) => {
                    failures += 1;
                    if !retry.allows_another(failures) {
                        return Err(Error::DeliveryFailure(format!(
                            "no confirmation for the message to exchange {:?} (nodes {}): {e}",
                            out.exchange_name(),
                            self.connector.node_labels()
                        )));
                    }
                    tracing::warn!(error = %e, "no publisher confirmation; publishing again");
                }
            }
        }
    }

    /// Closes the connection.
    pub(crate) async fn close(&self) {
        let session = self
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(s) = session
            && s.alive()
        {
            let _ = s.connection.close(200, "OK".into()).await;
        }
    }
}
