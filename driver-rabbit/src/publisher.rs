//! The send side: one connection per transport carrying a pool of channels in
//! publisher-confirm mode, reconnected on demand, with each exchange (and the default
//! notification queues) declared once per connection.
//!
//! A channel the broker refused a message on (a `basic.nack`), or that leaves a publish
//! unconfirmed for [`CONFIRM_PATIENCE`], is retired: taken out of the pool at once, and
//! closed once its other publishes are settled. The message is published again on a
//! fresh channel. The broker's refusal can belong to the channel rather than to the
//! queue: on RabbitMQ 3.x a channel keeps, per quorum queue, a client of that queue's
//! Raft cluster (`rabbit_fifo_client`) with the leader it last knew and the commands it
//! has pending. After the leader's node crashed, that state can stay stale, and the
//! channel then nacks every later publish to the queue, while a new channel (with a new
//! client that finds the current leader) has its publishes accepted at once. Publishing
//! again on the same channel therefore never recovers; a fresh channel does.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use messaging_core::{Detail, Error, ErrorKind, Result, Retry};

use crate::compression::{self, Compression};
use crate::connection::Connector;
use crate::kinds;
use crate::telemetry::{self, Failure, Kind, Outages};
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
    /// What the message is, for the publish counter.
    pub kind: Kind,
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
        Confirmation::Nack(None) => Err(Error::DeliveryFailure(Detail::new(
            ErrorKind::RefusedByBroker,
            format!(
                "the broker refused the message for exchange {:?} with routing key {:?}",
                out.exchange_name(),
                out.routing_key
            ),
        ))),
    }
}

/// What became of a confirmed send's attempts, for its error when it gives up.
#[derive(Default)]
struct Tally {
    /// Nacked by the broker.
    refused: u32,
    /// Not confirmed within [`CONFIRM_PATIENCE`].
    unconfirmed: u32,
    /// The channel or connection failed before the confirmation.
    lost: u32,
    last_error: Option<lapin::Error>,
    /// The last publish was still unconfirmed when the send's time ran out.
    unconfirmed_at_deadline: bool,
}

impl Tally {
    fn failures(&self) -> u32 {
        self.refused + self.unconfirmed + self.lost
    }

    /// The error of a send that gives up: what refused it, how often, for how long.
    fn give_up(
        &self,
        out: &Outgoing<'_>,
        node: &str,
        took: Duration,
        retry: Retry,
        out_of_time: bool,
    ) -> Error {
        let mut what = Vec::new();
        if self.refused > 0 {
            what.push(format!(
                "refused by the broker (nack) {} time(s)",
                self.refused
            ));
        }
        if self.unconfirmed > 0 {
            what.push(format!(
                "not confirmed within {CONFIRM_PATIENCE:?} {} time(s)",
                self.unconfirmed
            ));
        }
        if self.lost > 0 {
            what.push(format!(
                "its channel or connection lost before the confirmation {} time(s) (last: {})",
                self.lost,
                self.last_error
                    .as_ref()
                    .map_or_else(|| "unknown".to_string(), ToString::to_string)
            ));
        }
        if self.unconfirmed_at_deadline {
            what.push("not confirmed when its time ran out".to_string());
        }
        let bound = if out_of_time {
            "its time ran out".to_string()
        } else {
            match retry {
                Retry::Times(n) => format!("retry = {n}"),
                Retry::Forever => "retry".to_string(),
            }
        };
        let text = format!(
            "the message for exchange {:?} with routing key {:?} was {} over {:.1?}, last on {node}; gave up ({bound})",
            out.exchange_name(),
            out.routing_key,
            what.join(", "),
            took,
        );
        // The kind says what the last failure was: a lost connection, else a refusal
        // (nacks) or no confirmation in time.
        let detail = match &self.last_error {
            Some(e) => Detail::new(kinds::of(e), text).with_source(e.clone()),
            None if self.refused > 0 => Detail::new(ErrorKind::RefusedByBroker, text),
            None => Detail::new(ErrorKind::Timeout, text),
        };
        if out_of_time {
            Error::Timeout(detail)
        } else {
            Error::DeliveryFailure(detail)
        }
    }
}

struct Session {
    connection: Connection,
    node: Arc<str>,
    slots: Vec<Arc<Slot>>,
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
    async fn channel(&self) -> lapin::Result<(Channel, InFlight, Arc<Slot>)> {
        let slot = self
            .slots
            .iter()
            .find(|s| s.in_flight.load(Ordering::Relaxed) < CHANNEL_FILL)
            .unwrap_or_else(|| {
                &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()]
            })
            .clone();
        let in_flight = InFlight::enter(&slot.in_flight);
        if let Some(c) = slot.open_channel() {
            return Ok((c, in_flight, slot));
        }
        let _one_at_a_time = self.opening.lock().await;
        if let Some(c) = slot.open_channel() {
            return Ok((c, in_flight, slot));
        }
        let channel = self.connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        *slot.channel.lock().unwrap_or_else(|e| e.into_inner()) = Some(channel.clone());
        Ok((channel, in_flight, slot))
    }

    /// Declares what `out` needs unless this connection already did (as a broker that
    /// refuses transient queues wants when `transient_refused`).
    async fn declare(
        &self,
        out: &Outgoing<'_>,
        connector: &Connector,
        transient_refused: bool,
    ) -> lapin::Result<()> {
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
        let mut declarer = Declarer::new(connector, &self.connection, channel)
            .transient_refused(transient_refused);
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

/// How long a confirmed send waits for the broker's confirmation before it takes the
/// channel as stuck, retires it and publishes again (counted against `retry`). A
/// broker confirms in milliseconds, or in a few seconds while a quorum queue elects a
/// leader; a channel whose confirmation has not come in this long will not recover.
pub(crate) const CONFIRM_PATIENCE: Duration = Duration::from_secs(20);

/// How long a retired channel is given to settle its other publishes before it is
/// closed (its unsettled publishes then fail and are published again by their senders).
const RETIRED_DRAIN: Duration = Duration::from_secs(30);

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

    /// Takes `channel` out of use (unless another sender already did): the next
    /// publish on this slot opens a fresh channel. It is closed once its publishes
    /// are settled, or after [`RETIRED_DRAIN`].
    fn retire(&self, channel: &Channel, node: &str, why: &str) {
        {
            let mut current = self.channel.lock().unwrap_or_else(|e| e.into_inner());
            if current.as_ref().is_none_or(|c| c.id() != channel.id()) {
                return;
            }
            *current = None;
        }
        tracing::warn!(
            node,
            channel = channel.id(),
            why,
            "retiring the publishing channel; the next publishes use a fresh one"
        );
        let channel = channel.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(RETIRED_DRAIN, channel.wait_for_confirms()).await;
            if channel.status().connected() {
                let _ = channel.close(200, "retired".into()).await;
            }
        });
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

/// A publish's confirmation still to come, with the channel it was published on.
pub(crate) struct Confirm {
    confirmation: lapin::PublisherConfirm,
    channel: Channel,
    slot: Arc<Slot>,
    _in_flight: InFlight,
    /// When the `basic.publish` went out, for the confirmation's time (real time, not
    /// tokio's: a paused test clock must not bend the histogram).
    published_at: std::time::Instant,
    /// The node the channel's connection is on, for logs and errors (shared: one per
    /// connection, not a copy per publish).
    pub node: Arc<str>,
}

impl Confirm {
    /// Waits for the confirmation, and records it (its time, or the failure it says).
    /// A refusal (a nack) retires the channel, so that the next publish, of this
    /// message or another, goes out on a fresh one.
    pub(crate) async fn outcome(self) -> lapin::Result<Confirmation> {
        let Confirm {
            confirmation,
            channel,
            slot,
            node,
            published_at,
            _in_flight,
        } = self;
        let outcome = confirmation.await;
        telemetry::settled(&outcome, published_at);
        if matches!(outcome, Ok(Confirmation::Nack(None))) {
            slot.retire(&channel, &node, "the broker refused a message on it (nack)");
        }
        outcome
    }

    /// [`Confirm::outcome`] within `patience`, `None` past it. Only a wait of the full
    /// [`CONFIRM_PATIENCE`] takes the channel as stuck and retires it: a shorter one
    /// (a send's deadline drawing near) says nothing about the channel.
    async fn outcome_within(self, patience: Duration) -> Option<lapin::Result<Confirmation>> {
        let (channel, slot, node) = (self.channel.clone(), self.slot.clone(), self.node.clone());
        match tokio::time::timeout(patience, self.outcome()).await {
            Ok(outcome) => Some(outcome),
            Err(_) => {
                if patience >= CONFIRM_PATIENCE {
                    slot.retire(&channel, &node, "a publish on it was not confirmed in time");
                }
                None
            }
        }
    }
}

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
    /// The send connection's outages, counted when a new one replaces a lost one.
    outages: Mutex<Outages>,
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
            outages: Mutex::default(),
        }
    }

    /// The session to publish on, if its connection is up. One found down is noted
    /// as an outage: the connection is made again on demand (by the next publish), so
    /// this is where a lost one is seen.
    fn current(&self) -> Option<Arc<Session>> {
        let session = self
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        if session.alive() {
            return Some(session);
        }
        self.lost();
        None
    }

    /// Notes that the send connection is lost (from now, unless already noted).
    fn lost(&self) {
        self.outages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lost(std::time::Instant::now());
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
        self.outages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reconnected();
        let session = Arc::new(Session {
            connection,
            node: node.into(),
            slots: (0..self.pool_size).map(|_| Arc::default()).collect(),
            next: AtomicUsize::new(0),
            opening: tokio::sync::Mutex::new(()),
            declare_channel: tokio::sync::Mutex::new(None),
            declared: Mutex::new(Declared::default()),
        });
        *self.session.lock().unwrap_or_else(|e| e.into_inner()) = Some(session.clone());
        Ok(session)
    }

    /// Drops `session` as the current one (its connection is closing).
    fn forget(&self, session: &Arc<Session>) {
        let mut current = self.session.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, session)) {
            *current = None;
            drop(current);
            self.lost();
        }
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

    /// The current session, connecting as `retry` allows; with a deadline, giving up
    /// when it passes.
    async fn session_by(&self, retry: Retry, deadline: Option<Instant>) -> Result<Arc<Session>> {
        let Some(deadline) = deadline else {
            return self.session(retry).await;
        };
        match tokio::time::timeout_at(deadline, self.session(retry)).await {
            Ok(session) => session,
            Err(_) => Err(Error::Timeout(
                format!(
                    "cannot connect to RabbitMQ in the time the send had (nodes {})",
                    self.connector.node_labels()
                )
                .into(),
            )),
        }
    }

    /// Publishes and returns the confirmation still to come, so a caller may wait for
    /// it alongside something else (a call waits for its reply at the same time).
    /// A lost connection means connecting again and publishing again, as `retry`
    /// allows and, with a deadline, until it passes.
    pub(crate) async fn publish(
        &self,
        out: &Outgoing<'_>,
        retry: Retry,
        deadline: Option<Instant>,
    ) -> Result<Confirm> {
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
            let session = self.session_by(retry, deadline).await?;
            let transient_refused = self.connector.transient_refused();
            let attempt = async {
                session
                    .declare(out, &self.connector, transient_refused)
                    .await?;
                let (channel, in_flight, slot) = session.channel().await?;
                let published_at = std::time::Instant::now();
                let confirmation = channel
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
                telemetry::published(out.kind);
                Ok::<Confirm, lapin::Error>(Confirm {
                    confirmation,
                    channel,
                    slot,
                    published_at,
                    _in_flight: in_flight,
                    node: session.node.clone(),
                })
            };
            // With a deadline, a broker that stops reading (a resource alarm) or a
            // half-open connection cannot hold the attempt past it.
            let outcome = match deadline {
                Some(d) => tokio::time::timeout_at(d, attempt).await.map_err(|_| {
                    Error::Timeout(format!(
                        "could not publish to exchange {:?} with routing key {:?} on {} in the time the send had",
                        out.exchange_name(),
                        out.routing_key,
                        session.node
                    ).into())
                })?,
                None => attempt.await,
            };
            let error = match outcome {
                Ok(confirm) => return Ok(confirm),
                Err(e) => e,
            };
            // Whatever follows (publishing again or giving up), this publish failed.
            telemetry::failed(Failure::Error);
            // A transient queue refused (closing the connection): once more, at once,
            // declared as the broker wants; refused again, nothing will help.
            if crate::topology::is_transient_queue_refusal(&error) {
                if !transient_refused {
                    self.connector.note_transient_refusal();
                    // The broker closed this connection; lapin may not show it yet.
                    self.forget(&session);
                    continue;
                }
                let message = format!(
                    "declaring the queue for exchange {:?} with routing key {:?} on {}: {}",
                    out.exchange_name(),
                    out.routing_key,
                    session.node,
                    crate::topology::describe(&error)
                );
                return Err(Error::Transport(
                    Detail::new(kinds::of(&error), message).with_source(error),
                ));
            }
            // The broker refused something on a live connection (a 406 on declare, a
            // missing exchange): retrying will not help. Anything else (an I/O error the
            // connection's status does not show yet, a channel closed under the send) is
            // the connection or channel failing: publish again.
            if session.alive() && crate::kinds::protocol_error(&error).is_some() {
                let message = format!(
                    "publishing to exchange {:?} with routing key {:?} on {}: {}",
                    out.exchange_name(),
                    out.routing_key,
                    session.node,
                    crate::topology::describe(&error)
                );
                return Err(Error::Transport(
                    Detail::new(kinds::of(&error), message).with_source(error),
                ));
            }
            failures += 1;
            let wait = self.connector.options().reconnect_delay();
            let out_of_time = deadline.is_some_and(|d| Instant::now() + wait >= d);
            if !retry.allows_another(failures) || out_of_time {
                let what = format!(
                    "lost the connection to {} while publishing, {failures} time(s) (nodes {}): {error}",
                    session.node,
                    self.connector.node_labels()
                );
                let what = Detail::new(kinds::of(&error), what).with_source(error);
                // The send's time ran out before the retries did: a timeout.
                return Err(if retry.allows_another(failures) {
                    Error::Timeout(what)
                } else {
                    Error::DeliveryFailure(what)
                });
            }
            if !session.alive() {
                self.lost();
            }
            tracing::warn!(node = %session.node, %error, "connection lost while publishing; reconnecting");
            tokio::time::sleep(wait).await;
        }
    }

    /// Publishes and waits for the broker's confirmation: a returned (mandatory)
    /// message is [`Error::Undeliverable`]. Each of these means publishing again, on a
    /// fresh channel, as `retry` allows and, with a deadline, until it passes: a refusal
    /// (a nack: a quorum queue without a leader during a failover, or a channel whose
    /// view of the queue went stale; after the retry interval), a confirmation that does
    /// not come within [`CONFIRM_PATIENCE`], a connection lost before the confirmation
    /// (the peer drops copies by `_unique_id`). Giving up names what happened how often.
    pub(crate) async fn publish_confirmed(
        &self,
        out: &Outgoing<'_>,
        retry: Retry,
        deadline: Option<Instant>,
    ) -> Result<()> {
        let started = Instant::now();
        let mut tally = Tally::default();
        let mut refusal_waits = self.connector.options().retry_intervals();
        loop {
            let confirm = self.publish(out, retry, deadline).await?;
            let node = confirm.node.clone();
            let patience = deadline.map_or(CONFIRM_PATIENCE, |d| {
                d.saturating_duration_since(Instant::now())
                    .min(CONFIRM_PATIENCE)
            });
            let mut wait = Duration::ZERO;
            let mut out_of_time = false;
            match confirm.outcome_within(patience).await {
                Some(Ok(Confirmation::Nack(None))) => {
                    tally.refused += 1;
                    wait = refusal_waits.next().unwrap_or(Duration::from_secs(1));
                }
                Some(Ok(confirmation)) => return check_confirmation(confirmation, out),
                Some(Err(e)) => {
                    tally.lost += 1;
                    tally.last_error = Some(e);
                }
                None if patience >= CONFIRM_PATIENCE => tally.unconfirmed += 1,
                None => {
                    tally.unconfirmed_at_deadline = true;
                    out_of_time = true;
                }
            }
            out_of_time |= deadline.is_some_and(|d| Instant::now() + wait >= d);
            if !retry.allows_another(tally.failures()) || out_of_time {
                return Err(tally.give_up(out, &node, started.elapsed(), retry, out_of_time));
            }
            tracing::warn!(
                exchange = out.exchange_name(),
                routing_key = out.routing_key,
                %node,
                refused = tally.refused,
                unconfirmed = tally.unconfirmed,
                lost = tally.lost,
                retry_in = ?wait,
                "the message was not confirmed; publishing it again on a fresh channel"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// Closes the connection.
    pub(crate) async fn close(&self) {
        let session = self
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        // Closed on purpose: a connection made after this is not a reconnection.
        self.outages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed();
        if let Some(s) = session
            && s.alive()
        {
            let _ = s.connection.close(200, "OK".into()).await;
        }
    }
}
