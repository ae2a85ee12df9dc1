//! Supervised consumption: a connection of its own per listener (and for the reply
//! queue), its queues declared and consumed, and on any loss (broker restart, node
//! failure, consumer cancelled by the broker) a new connection after the configured
//! delay, the topology declared again and consuming resumed, with no help from the
//! application.

use async_trait::async_trait;
use futures::stream::select_all;
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, Consumer};
use messaging_core::{Detail, Error, Result, Retry};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::connection::Connector;
use crate::kinds;
use crate::telemetry::Outages;
use crate::topology::{self, Declarer, QueueSpec};

/// Receives the deliveries of a supervised consumer in order, in batches of what
/// had already arrived, each tagged with the index of its queue in the plan (every
/// queue is consumed on a channel of its own, so its delivery tags increase).
#[async_trait]
pub(crate) trait DeliverySink: Send + 'static {
    /// Handles a batch of deliveries (acks, decodes, forwards).
    async fn deliver(&mut self, batch: Vec<(usize, Delivery)>);
}

/// How long starting waits for an exclusive queue another connection still holds.
const LOCKED_PATIENCE: Duration = Duration::from_secs(15);

/// At most this many deliveries are handed over at once.
const MAX_BATCH: usize = 128;

/// Where each stream queue of a plan is read from next (`x-stream-offset`), kept
/// across reconnects: `next` at first (a new server does not run the fanout casts sent
/// before it started); the offset after the last one handled once deliveries came;
/// after a lost connection with nothing handled yet, the time it was lost (less a
/// second), so casts sent meanwhile still come (any older one again is dropped as a
/// duplicate by its `_unique_id`); `last` after the broker cancelled the consumer (the
/// stream may have been deleted and declared again, its offsets starting over), as oslo.
struct StreamOffsets(Mutex<Vec<Offset>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offset {
    Next,
    Last,
    /// The offset to read from.
    At(i64),
    /// Seconds since the epoch to read from.
    Since(u64),
}

impl StreamOffsets {
    fn new(queues: usize) -> StreamOffsets {
        StreamOffsets(Mutex::new(vec![Offset::Next; queues]))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Offset>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `x-stream-offset` to consume queue `i` from.
    fn argument(&self, i: usize) -> AMQPValue {
        match self.lock()[i] {
            Offset::Next => AMQPValue::LongString("next".into()),
            Offset::Last => AMQPValue::LongString("last".into()),
            Offset::At(offset) => AMQPValue::LongLongInt(offset),
            Offset::Since(seconds) => AMQPValue::Timestamp(seconds),
        }
    }

    /// The offset of a delivery (its `x-stream-offset` header).
    fn of(delivery: &Delivery) -> Option<i64> {
        delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get("x-stream-offset"))
            .and_then(|v| match v {
                AMQPValue::LongLongInt(n) => Some(*n),
                AMQPValue::LongInt(n) => Some(i64::from(*n)),
                AMQPValue::LongUInt(n) => Some(i64::from(*n)),
                _ => None,
            })
            .filter(|o| *o >= 0)
    }

    /// Notes that queue `i`'s delivery at `offset` was handled.
    fn handled(&self, i: usize, offset: i64) {
        self.lock()[i] = Offset::At(offset.saturating_add(1));
    }

    /// After a lost connection: where nothing was handled yet, read from a second
    /// before now.
    fn lost(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs().saturating_sub(1));
        for offset in self.lock().iter_mut() {
            if matches!(offset, Offset::Next | Offset::Last) {
                *offset = Offset::Since(now);
            }
        }
    }

    /// After the broker cancelled a consumer: read the streams from `last`.
    fn cancelled(&self) {
        for offset in self.lock().iter_mut() {
            *offset = Offset::Last;
        }
    }
}

/// What to declare and consume.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerPlan {
    pub queues: Vec<QueueSpec>,
    /// Deliveries need no acknowledgement (the reply queue).
    pub no_ack: bool,
    /// `basic.qos` prefetch; 0 for none.
    pub prefetch: u16,
    pub arguments: FieldTable,
    /// Names the connection in logs.
    pub purpose: &'static str,
}

struct Consuming {
    connection: Connection,
    /// One channel per queue, in the plan's order.
    channels: Vec<Channel>,
    consumers: Vec<Consumer>,
    tags: Vec<ShortString>,
    node: String,
}

impl ConsumerPlan {
    /// Declares and consumes on `connection` (as a broker that refuses transient
    /// queues wants when `transient_refused`); closes it on failure.
    async fn setup(
        &self,
        connector: &Connector,
        connection: Connection,
        node: String,
        transient_refused: bool,
        offsets: &StreamOffsets,
    ) -> lapin::Result<Consuming> {
        match self
            .declare_and_consume(connector, &connection, transient_refused, offsets)
            .await
        {
            Ok((channels, consumers)) => Ok(Consuming {
                tags: consumers.iter().map(Consumer::tag).collect(),
                connection,
                channels,
                consumers,
                node,
            }),
            Err(e) => {
                let _ = connection.close(200, "OK".into()).await;
                Err(e)
            }
        }
    }

    async fn declare_and_consume(
        &self,
        connector: &Connector,
        connection: &Connection,
        transient_refused: bool,
        offsets: &StreamOffsets,
    ) -> lapin::Result<(Vec<Channel>, Vec<Consumer>)> {
        let channel = connection.create_channel().await?;
        let mut declarer =
            Declarer::new(connector, connection, channel).transient_refused(transient_refused);
        for queue in &self.queues {
            declarer.queue(queue).await?;
        }
        let mut spare = Some(declarer.into_channel());
        let mut channels = Vec::with_capacity(self.queues.len());
        let mut consumers = Vec::with_capacity(self.queues.len());
        for (i, queue) in self.queues.iter().enumerate() {
            let channel = match spare.take() {
                Some(c) => c,
                None => connection.create_channel().await?,
            };
            if self.prefetch > 0 {
                channel
                    .basic_qos(self.prefetch, BasicQosOptions::default())
                    .await?;
            }
            let arguments = if queue.stream {
                let mut arguments = FieldTable::default();
                arguments.insert("x-stream-offset".into(), offsets.argument(i));
                arguments
            } else {
                self.arguments.clone()
            };
            let consumer = channel
                .basic_consume(
                    queue.name.as_str().into(),
                    (i + 1).to_string().into(),
                    BasicConsumeOptions {
                        no_ack: self.no_ack,
                        ..Default::default()
                    },
                    arguments,
                )
                .await?;
            channels.push(channel);
            consumers.push(consumer);
        }
        Ok((channels, consumers))
    }
}

/// Whether `e` is the broker refusing a transient non-exclusive queue while the
/// declarations did not know it does: then noted on the connector, so that declaring
/// again (private queues exclusive, shared ones durable) can succeed.
fn learns_transient_refusal(connector: &Connector, known: bool, e: &lapin::Error) -> bool {
    let learns = !known && topology::is_transient_queue_refusal(e);
    if learns {
        connector.note_transient_refusal();
    }
    learns
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Stopped,
    Closed,
}

/// A running supervised consumer.
pub(crate) struct Supervised {
    phase: watch::Sender<Phase>,
    task: Option<JoinHandle<()>>,
}

impl Supervised {
    /// Connects, declares and starts consuming; the first connection honours `retry`
    /// and a declaration the broker refuses is an error here.
    pub(crate) async fn start(
        connector: Arc<Connector>,
        plan: ConsumerPlan,
        sink: Box<dyn DeliverySink>,
        retry: Retry,
    ) -> Result<Supervised> {
        let offsets = StreamOffsets::new(plan.queues.len());
        let started = tokio::time::Instant::now();
        let consuming = loop {
            let (connection, node) = connector.connect(retry, plan.purpose).await?;
            let known = connector.transient_refused();
            match plan
                .setup(&connector, connection, node, known, &offsets)
                .await
            {
                Ok(consuming) => break consuming,
                // A transient queue refused: once more, declared as the broker wants.
                Err(e) if learns_transient_refusal(&connector, known, &e) => continue,
                // An exclusive queue of the same name still held by the connection before
                // a restart (stable names of the queue manager): the broker frees it soon.
                Err(e)
                    if topology::is_resource_locked(&e) && started.elapsed() < LOCKED_PATIENCE =>
                {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
                Err(e) => {
                    let queues: Vec<&str> = plan.queues.iter().map(|q| q.name.as_str()).collect();
                    let message = format!(
                        "cannot declare or consume {}: {}",
                        queues.join(", "),
                        topology::describe(&e)
                    );
                    return Err(Error::Transport(
                        Detail::new(kinds::of(&e), message).with_source(e),
                    ));
                }
            }
        };
        let (phase, phase_rx) = watch::channel(Phase::Running);
        let task = tokio::spawn(supervise(
            connector, plan, offsets, sink, phase_rx, consuming,
        ));
        Ok(Supervised {
            phase,
            task: Some(task),
        })
    }

    /// Stops consuming; the sink is dropped once the consumers are cancelled, and the
    /// connection stays open so received messages can still be settled.
    pub(crate) fn stop(&self) {
        self.phase.send_if_modified(|p| {
            let running = *p == Phase::Running;
            if running {
                *p = Phase::Stopped;
            }
            running
        });
    }

    /// Deletes the queues marked for it and closes the connection.
    pub(crate) async fn close(&mut self) {
        let _ = self.phase.send(Phase::Closed);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        let _ = self.phase.send(Phase::Closed);
    }
}

async fn supervise(
    connector: Arc<Connector>,
    plan: ConsumerPlan,
    offsets: StreamOffsets,
    mut sink: Box<dyn DeliverySink>,
    mut phase: watch::Receiver<Phase>,
    first: Consuming,
) {
    let mut current = Some(first);
    // This consumer's connection outages, counted when it consumes again.
    let mut outages = Outages::default();
    let consuming = loop {
        let mut consuming = match current.take() {
            Some(c) => c,
            None => {
                let reconnect = reconnect(&connector, &plan, &offsets);
                let c = tokio::select! {
                    c = reconnect => c,
                    _ = until(&mut phase, |p| *p != Phase::Running) => break None,
                };
                outages.reconnected();
                c
            }
        };
        // Each consumer ends with a marker: select_all drops an ended stream silently,
        // and one consumer the broker cancelled must end the connection's turn.
        let mut stream = select_all(
            std::mem::take(&mut consuming.consumers)
                .into_iter()
                .enumerate()
                .map(|(i, consumer)| {
                    consumer
                        .map(move |d| Some(d.map(|d| (i, d))))
                        .chain(futures::stream::iter([None]))
                }),
        );
        let lost = loop {
            let first = tokio::select! {
                biased;
                _ = until(&mut phase, |p| *p != Phase::Running) => break false,
                next = stream.next() => next.flatten(),
            };
            let end = match first {
                Some(Ok(delivery)) => {
                    let mut batch = vec![delivery];
                    // Whatever else has already arrived goes in the same batch.
                    let end = loop {
                        if batch.len() >= MAX_BATCH {
                            break None;
                        }
                        match stream.next().now_or_never().map(Option::flatten) {
                            Some(Some(Ok(d))) => batch.push(d),
                            Some(other) => break Some(other),
                            None => break None,
                        }
                    };
                    let streamed: Vec<(usize, i64)> = batch
                        .iter()
                        .filter(|(i, _)| plan.queues[*i].stream)
                        .filter_map(|(i, d)| StreamOffsets::of(d).map(|o| (*i, o)))
                        .collect();
                    sink.deliver(batch).await;
                    // Handled only if still connected (their acks went out): else they are
                    // read again after the reconnect.
                    if consuming.connection.status().connected() {
                        for (i, offset) in streamed {
                            offsets.handled(i, offset);
                        }
                    }
                    end
                }
                other => Some(other),
            };
            match end {
                None => {}
                Some(Some(Err(e))) => {
                    tracing::warn!(node = %consuming.node, purpose = plan.purpose, error = %e, "consumer failed");
                    offsets.lost();
                    break true;
                }
                Some(_) => {
                    // A consumer's stream ended on a live connection: the broker
                    // cancelled it (its queue deleted, a stream member gone).
                    if consuming.connection.status().connected() {
                        offsets.cancelled();
                    } else {
                        offsets.lost();
                    }
                    break true;
                }
            }
        };
        if !lost {
            break Some(consuming);
        }
        // A consumer the broker cancelled on a live connection counts too: the
        // connection is dropped and made again, and nothing is consumed meanwhile.
        outages.lost(std::time::Instant::now());
        tracing::warn!(node = %consuming.node, purpose = plan.purpose, "connection or consumer lost; reconnecting");
        drop(stream);
        if consuming.connection.status().connected() {
            let _ = consuming.connection.close(200, "OK".into()).await;
        }
    };
    // Stopped: no more deliveries, but what was received may still be settled.
    if let Some(c) = &consuming {
        for (channel, tag) in c.channels.iter().zip(&c.tags) {
            let _ = channel
                .basic_cancel(tag.clone(), BasicCancelOptions::default())
                .await;
        }
    }
    drop(sink);
    until(&mut phase, |p| *p == Phase::Closed).await;
    if let Some(c) = consuming {
        for (channel, queue) in c.channels.iter().zip(&plan.queues) {
            if !queue.delete_on_close {
                continue;
            }
            let _ = channel
                .queue_delete(queue.name.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        let _ = c.connection.close(200, "OK".into()).await;
    }
}

/// Connects and sets up again, for as long as it takes.
async fn reconnect(
    connector: &Connector,
    plan: &ConsumerPlan,
    offsets: &StreamOffsets,
) -> Consuming {
    let mut waits = connector.options().retry_intervals();
    loop {
        tokio::time::sleep(connector.options().reconnect_delay()).await;
        let Ok((connection, node)) = connector.connect(Retry::Forever, plan.purpose).await else {
            continue;
        };
        let known = connector.transient_refused();
        match plan
            .setup(connector, connection, node.clone(), known, offsets)
            .await
        {
            Ok(c) => {
                tracing::info!(node = %node, purpose = plan.purpose, "consuming again");
                return c;
            }
            Err(e) if learns_transient_refusal(connector, known, &e) => {}
            Err(e) => {
                let wait = waits.next().unwrap_or_default();
                tracing::error!(node = %node, purpose = plan.purpose, error = %topology::describe(&e), retry_in = ?wait, "cannot declare or consume after reconnecting");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Waits until the phase satisfies `done` (or its sender is gone).
async fn until(phase: &mut watch::Receiver<Phase>, done: impl FnMut(&Phase) -> bool) {
    let _ = phase.wait_for(done).await.map(|_| ());
}

#[async_trait::async_trait]
impl messaging_core::driver::MessageSource for Supervised {
    fn stop(&mut self) {
        Supervised::stop(self);
    }

    async fn close(&mut self) {
        Supervised::close(self).await;
    }
}
