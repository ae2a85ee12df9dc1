//! Consumers: each runs on a thread of its own that polls librdkafka (which serves
//! rebalances there too) and hands every record to a handler, which decodes it and
//! passes it on to the async side.
//!
//! Offsets: a handler's [`Ack`] marks a record done; the consumer stores the offset
//! below which every record of the partition is done, and librdkafka commits stored
//! offsets every second, when partitions are revoked and at close. So a record is
//! committed only after it (and every record before it) was handled: at least once.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use messaging_core::{Detail, Error, ErrorKind, Result};
use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::admin::{LogContext, config_error};
use crate::kinds;
use crate::options::KafkaOptions;
use crate::telemetry;

/// How long a blocking metadata, offset or commit request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a group consumer may take to get its first partitions.
const JOIN_LIMIT: Duration = Duration::from_secs(60);
/// The least time between two commits made because a consumer caught up.
const EAGER_COMMIT_INTERVAL: Duration = Duration::from_millis(100);
/// How long closing a consumer may take before its caller goes on without it.
const CLOSE_LIMIT: Duration = Duration::from_secs(30);
/// How long leaving the group (serving the revocation it starts) may take when a
/// consumer closes.
const LEAVE_LIMIT: Duration = Duration::from_secs(10);
/// The longest single poll, so that a stop is noticed quickly.
const POLL_SLICE: Duration = Duration::from_millis(100);

/// Where a consumer group starts in a partition it has no committed offset for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At the first record: requests sent before the first server started are
    /// served, notifications sent before the first listener started are received.
    Earliest,
    /// At the end, as seen when the group first gets the partition; the offset is
    /// committed at once so that a rebalance loses nothing (oslo's listeners).
    Latest,
}

/// What a consumer reads.
#[derive(Debug, Clone)]
pub enum Subscription {
    /// Topics shared by a consumer group.
    Group {
        /// The group id.
        group: String,
        /// The topics.
        topics: Vec<String>,
        /// Where a new group starts.
        start: Start,
    },
    /// Every partition of the topics, from their current end, without a group
    /// (fanout and reply topics: each consumer sees every record sent after it began).
    Tail {
        /// The topics.
        topics: Vec<String>,
    },
}

/// One received record, as the handler sees it on the consumer's thread.
#[derive(Debug)]
pub struct Record<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its value (empty for a record without one).
    pub payload: &'a [u8],
}

/// Receives the records of a consumer, on the consumer's thread.
pub trait Handler: Send + 'static {
    /// Takes one record; `ack` marks it done (at once, or once handled). Records not
    /// yet done count against the consumer's flow-control limit.
    fn handle(&mut self, record: Record<'_>, ack: Ack);
}

/// Marks one record done. Dropping it without [`Ack::done`] leaves the record
/// uncommitted, so it is consumed again after a restart or a rebalance.
#[derive(Debug)]
pub struct Ack {
    shared: Weak<Shared>,
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    generation: u64,
}

impl Ack {
    /// Marks the record done and commits at once, waiting for the broker (oslo's
    /// synchronous commit before dispatch). Runs on the consumer's thread.
    pub fn done_and_commit(self) {
        let shared = self.shared.upgrade();
        self.done();
        if let Some(shared) = shared
            && shared.commits
            && let Err(e) = shared.consumer.commit_consumer_state(CommitMode::Sync)
        {
            tracing::warn!(error = %e, "Kafka offset commit before dispatch failed");
        }
    }

    /// The record is handled: its offset may be committed once every earlier record
    /// of its partition is handled too.
    pub fn done(self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let mut table = shared.table.lock().unwrap_or_else(|e| e.into_inner());
        let Some(part) = table
            .parts
            .get_mut(&*self.topic)
            .and_then(|p| p.get_mut(&self.partition))
        else {
            return;
        };
        if part.generation != self.generation || !part.pending.remove(&self.offset) {
            return;
        }
        let commit_to = part.pending.first().copied().unwrap_or(part.next);
        let stored = shared.commits && commit_to > part.stored;
        if stored {
            part.stored = commit_to;
            // Stored under the lock so that stores never go backwards.
            if let Err(e) = shared
                .consumer
                .store_offset(&self.topic, self.partition, commit_to - 1)
            {
                tracing::debug!(topic = %self.topic, partition = self.partition, error = %e, "offset not stored");
            }
        }
        table.outstanding = table.outstanding.saturating_sub(1);
        shared.room.notify_one();
        // Caught up: commit now rather than at the next background commit, so that a
        // rebalance soon after does not hand the records out again. Busy consumers
        // are rarely caught up, and are limited to a commit per interval anyway.
        if stored
            && table.outstanding == 0
            && table
                .last_commit
                .is_none_or(|t| t.elapsed() >= EAGER_COMMIT_INTERVAL)
        {
            table.last_commit = Some(Instant::now());
            if let Err(e) = shared.consumer.commit_consumer_state(CommitMode::Async) {
                tracing::debug!(topic = %self.topic, error = %e, "offset commit not started");
            }
        }
    }
}

/// The records of each assigned partition that are out but not done.
#[derive(Default)]
struct Table {
    generation: u64,
    parts: HashMap<Arc<str>, HashMap<i32, Part>>,
    /// Records handed out and not done, over all partitions.
    outstanding: usize,
    last_commit: Option<Instant>,
}

struct Part {
    generation: u64,
    pending: BTreeSet<i64>,
    /// One past the highest offset handed out.
    next: i64,
    /// The offset stored for commit (the next record to consume).
    stored: i64,
}

impl Table {
    fn dispatch(&mut self, topic: &str, partition: i32, offset: i64) -> (Arc<str>, u64) {
        let generation = self.generation;
        let name = match self.parts.get_key_value(topic) {
            Some((name, _)) => name.clone(),
            None => {
                let name: Arc<str> = Arc::from(topic);
                self.parts.insert(name.clone(), HashMap::new());
                name
            }
        };
        let parts = self.parts.entry(name.clone()).or_default();
        let part = parts.entry(partition).or_insert_with(|| Part {
            generation,
            pending: BTreeSet::new(),
            next: offset,
            stored: offset,
        });
        if part.pending.insert(offset) {
            self.outstanding += 1;
        }
        part.next = part.next.max(offset + 1);
        let generation = part.generation;
        (name, generation)
    }

    /// Partitions given away: acks of their records no longer count.
    fn reset(&mut self) {
        self.generation += 1;
        self.parts.clear();
        self.outstanding = 0;
    }
}

/// What the consumer's thread and the acks share.
struct Shared {
    consumer: BaseConsumer<GroupContext>,
    /// Whether offsets are stored and committed (not for `Tail` consumers).
    commits: bool,
    table: Arc<Mutex<Table>>,
    /// Signalled when records are done, for the flow control of the poll loop.
    room: Condvar,
    stop: AtomicBool,
}

/// Serves rebalances (decides start offsets and tells when partitions arrived) and,
/// for a group consumer, reports its consumer lag.
struct GroupContext {
    start: Option<Start>,
    table: Arc<Mutex<Table>>,
    ready: watch::Sender<bool>,
    name: String,
    log: LogContext,
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.log.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }

    /// Consumer lag from librdkafka's statistics, which only group consumers ask
    /// for (`statistics.interval.ms`): read straight from the JSON rather than
    /// through [`ClientContext::stats`], whose [`rdkafka::Statistics`] is built in
    /// full (every broker's latency windows) at each report.
    fn stats_raw(&self, statistics: &[u8]) {
        if self.start.is_some() {
            telemetry::report_lag(&self.name, statistics);
        }
    }
}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if self.start == Some(Start::Latest)
                    && let Err(e) = start_at_end_unless_committed(consumer, tpl)
                {
                    tracing::warn!(consumer = %self.name, error = %e, "cannot fix start offsets; starting from the committed or earliest offsets");
                }
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!(consumer = %self.name, error = %e, "Kafka partition assignment failed");
                }
                tracing::debug!(consumer = %self.name, partitions = tpl.count(), "Kafka partitions assigned");
                self.ready.send_replace(true);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync)
                    && !matches!(e, KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset))
                {
                    tracing::debug!(consumer = %self.name, error = %e, "commit before revocation failed");
                }
                self.table.lock().unwrap_or_else(|e| e.into_inner()).reset();
                if let Err(e) = consumer.unassign() {
                    tracing::warn!(consumer = %self.name, error = %e, "Kafka partition revocation failed");
                }
            }
            other => {
                tracing::warn!(consumer = %self.name, error = ?other, "Kafka rebalance failed");
                let _ = consumer.unassign();
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result
            && !matches!(e, KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset))
        {
            tracing::warn!(consumer = %self.name, error = %e, "Kafka offset commit failed");
        }
    }
}

/// Sets the partitions without a committed offset to their current end, and commits
/// that, so later members of the group start there too.
fn start_at_end_unless_committed(
    consumer: &BaseConsumer<GroupContext>,
    tpl: &mut TopicPartitionList,
) -> KafkaResult<()> {
    let committed = consumer.committed_offsets(tpl.clone(), REQUEST_TIMEOUT)?;
    let mut fresh = TopicPartitionList::new();
    for elem in committed.elements() {
        if matches!(elem.offset(), Offset::Offset(_)) {
            continue;
        }
        let (_, high) =
            consumer.fetch_watermarks(elem.topic(), elem.partition(), REQUEST_TIMEOUT)?;
        fresh.add_partition_offset(elem.topic(), elem.partition(), Offset::Offset(high))?;
        tpl.set_partition_offset(elem.topic(), elem.partition(), Offset::Offset(high))?;
    }
    if fresh.count() > 0 {
        consumer.commit(&fresh, CommitMode::Sync)?;
    }
    Ok(())
}

/// A running consumer; [`Consumer::close`] ends it.
pub struct Consumer {
    shared: Option<Arc<Shared>>,
    thread: Option<JoinHandle<()>>,
    name: String,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.name)
            .finish()
    }
}

impl Consumer {
    /// Starts consuming; returns once the consumer has its partitions (a group
    /// consumer, after joining its group), so that any record sent afterwards is
    /// received.
    pub async fn start(
        options: &KafkaOptions,
        subscription: Subscription,
        handler: impl Handler,
    ) -> Result<Consumer> {
        let (config, start, name) = match &subscription {
            Subscription::Group { group, start, .. } => {
                let mut config = options.consumer_config(group);
                // For the group's consumer lag (see `GroupContext::stats_raw`).
                config.set("statistics.interval.ms", telemetry::STATISTICS_INTERVAL_MS);
                (config, Some(*start), group.clone())
            }
            Subscription::Tail { topics } => {
                // Assigned partitions need a group id, though no group is joined
                // and nothing is committed.
                let mut config = options
                    .consumer_config(&format!("oslo.tail.{}", uuid::Uuid::new_v4().simple()));
                config.set("enable.auto.commit", "false");
                (config, None, topics.join(","))
            }
        };
        let (ready_tx, mut ready) = watch::channel(false);
        // What the consumer's error callback says, to explain a failure to join.
        let (log, began) = (LogContext::default(), Instant::now());
        let consumer_errors = log.errors.clone();
        let table = Arc::new(Mutex::new(Table::default()));
        let consumer: BaseConsumer<GroupContext> = config
            .create_with_context(GroupContext {
                start,
                table: table.clone(),
                ready: ready_tx,
                name: name.clone(),
                log: log.clone(),
            })
            .map_err(|e| config_error(format!("Kafka consumer {name}: {e}"), e, options))?;
        let shared = Arc::new(Shared {
            consumer,
            commits: start.is_some(),
            room: Condvar::new(),
            table,
            stop: AtomicBool::new(false),
        });
        let target = name.clone();
        let failure = |reason: Detail| Error::ListenFailure {
            target: target.clone(),
            reason,
        };
        match &subscription {
            Subscription::Group { topics, .. } => {
                let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
                shared
                    .consumer
                    .subscribe(&topics)
                    .map_err(|e| failure(listen_detail(format!("cannot subscribe: {e}"), e)))?;
            }
            Subscription::Tail { topics } => {
                let (shared, topics) = (shared.clone(), topics.clone());
                tokio::task::spawn_blocking(move || assign_ends(&shared.consumer, &topics))
                    .await
                    .map_err(|e| {
                        failure(Detail::new(ErrorKind::Other, e.to_string()).with_source(e))
                    })?
                    .map_err(|e| {
                        failure(listen_detail(format!("cannot assign partitions: {e}"), e))
                    })?;
            }
        }
        let thread = {
            let shared = shared.clone();
            let slice = options.poll_timeout().min(POLL_SLICE);
            let limit = options.kafka.max_poll_records.max(1) * 4;
            let name = name.clone();
            std::thread::Builder::new()
                .name("kafka-consumer".into())
                .spawn(move || poll_loop(&shared, slice, limit, handler, &name))
                .map_err(|e| {
                    let message = format!("cannot start a thread: {e}");
                    failure(Detail::new(ErrorKind::Io, message).with_source(e))
                })?
        };
        let mut consumer = Consumer {
            shared: Some(shared),
            thread: Some(thread),
            name,
        };
        if start.is_some() {
            let joined =
                tokio::time::timeout(JOIN_LIMIT, async { ready.wait_for(|r| *r).await.is_ok() })
                    .await;
            if joined != Ok(true) {
                consumer.close().await;
                let message = format!(
                    "no partitions assigned within {JOIN_LIMIT:?} (is the group coordinator reachable?)"
                );
                let errors = &consumer_errors;
                return Err(failure(
                    errors.explain(Detail::new(ErrorKind::Timeout, message), began),
                ));
            }
        }
        Ok(consumer)
    }

    /// Stops taking new records; those handed out may still be acked until close.
    pub fn stop(&self) {
        if let Some(shared) = &self.shared {
            shared.stop.store(true, Ordering::Relaxed);
        }
    }

    /// Stops, commits what is done and leaves the group.
    pub async fn close(&mut self) {
        self.stop();
        let (Some(shared), thread) = (self.shared.take(), self.thread.take()) else {
            return;
        };
        let name = self.name.clone();
        // On a thread of its own rather than the runtime's blocking pool: should
        // librdkafka never finish closing, the caller goes on after CLOSE_LIMIT and only
        // that thread is left waiting (a runtime waits for its blocking tasks when it
        // shuts down).
        let (done, closed) = tokio::sync::oneshot::channel();
        let closing = std::thread::Builder::new()
            .name("kafka-close".into())
            .spawn(move || {
                if let Some(thread) = thread {
                    let _ = thread.join();
                }
                close_blocking(shared, &name);
                let _ = done.send(());
            });
        if let Err(e) = closing {
            tracing::warn!(consumer = %self.name, error = %e, "cannot start a thread to close the Kafka consumer; it is left open");
            return;
        }
        if tokio::time::timeout(CLOSE_LIMIT, closed).await.is_err() {
            tracing::warn!(consumer = %self.name, limit = ?CLOSE_LIMIT, "the Kafka consumer did not close in time; left closing in the background");
        }
    }
}

/// Commits what is done, leaves the group, and closes the consumer.
///
/// The group is left before the consumer is dropped, serving the rebalance that
/// leaving starts (revoking the partitions) while the consumer is still fully alive:
/// a revocation served while librdkafka closes the consumer can wait forever for the
/// consumer group to take the unassignment (seen on the mock cluster when a rebalance
/// was under way), and rust-rdkafka's drop waits for the close without a limit.
fn close_blocking(shared: Arc<Shared>, name: &str) {
    if shared.consumer.group_metadata().is_some() {
        match shared.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                tracing::warn!(consumer = %name, error = %e, "final Kafka commit failed")
            }
        }
    }
    if shared.commits {
        shared.consumer.unsubscribe();
        let deadline = Instant::now() + LEAVE_LIMIT;
        // Records still fetched are dropped unacknowledged: they were not committed, so
        // the group hands them out again.
        while Instant::now() < deadline {
            let assigned = shared.consumer.assignment().map_or(0, |a| a.count());
            if assigned == 0 {
                break;
            }
            let _ = shared.consumer.poll(POLL_SLICE);
        }
    }
    // Acks hold only weak references: this drop closes the consumer.
    drop(shared);
}

/// The consumers of one server or listener.
#[derive(Debug)]
pub struct Consumers(pub Vec<Consumer>);

#[async_trait::async_trait]
impl messaging_core::driver::MessageSource for Consumers {
    fn stop(&mut self) {
        self.0.iter().for_each(Consumer::stop);
    }

    async fn close(&mut self) {
        for consumer in &mut self.0 {
            consumer.close().await;
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Assigns every partition of `topics` at its current end.
/// Why a consumer could not listen, of the kind of the librdkafka error.
fn listen_detail(message: String, e: KafkaError) -> Detail {
    Detail::new(kinds::of(&e), message).with_source(e)
}

fn assign_ends(consumer: &BaseConsumer<GroupContext>, topics: &[String]) -> KafkaResult<()> {
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), REQUEST_TIMEOUT)?;
        for t in metadata.topics().iter().filter(|t| t.name() == topic) {
            for p in t.partitions() {
                let (_, high) = consumer.fetch_watermarks(topic, p.id(), REQUEST_TIMEOUT)?;
                tpl.add_partition_offset(topic, p.id(), Offset::Offset(high))?;
            }
        }
    }
    consumer.assign(&tpl)
}

/// The consumer's thread: polls until stopped, handing each record to the handler.
///
/// Flow control: while more than `limit` records are out and not done, polling waits
/// until half of them are.
fn poll_loop(
    shared: &Arc<Shared>,
    slice: Duration,
    limit: usize,
    mut handler: impl Handler,
    name: &str,
) {
    let weak = Arc::downgrade(shared);
    let mut last_error: Option<String> = None;
    while !shared.stop.load(Ordering::Relaxed) {
        // Flow control: wait while too many records are out. (Pausing the partitions
        // instead would make librdkafka drop what it has prefetched and fetch it
        // again.) Rebalances wait too, up to `max.poll.interval.ms`.
        {
            let mut table = shared.table.lock().unwrap_or_else(|e| e.into_inner());
            if table.outstanding > limit {
                while table.outstanding > limit / 2 && !shared.stop.load(Ordering::Relaxed) {
                    table = shared
                        .room
                        .wait_timeout(table, POLL_SLICE)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                continue;
            }
        }
        let message = match shared.consumer.poll(slice) {
            None => continue,
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                // Broker outages repeat the same error every poll: log it once.
                let text = e.to_string();
                if last_error.as_deref() != Some(&text) {
                    tracing::warn!(consumer = %name, error = %text, "Kafka consumer error");
                    last_error = Some(text);
                }
                continue;
            }
        };
        last_error = None;
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let (topic_name, generation) = shared
            .table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .dispatch(topic, partition, offset);
        let ack = Ack {
            shared: weak.clone(),
            topic: topic_name,
            partition,
            offset,
            generation,
        };
        let record = Record {
            topic,
            partition,
            offset,
            payload: message.payload().unwrap_or_default(),
        };
        handler.handle(record, ack);
    }
}
