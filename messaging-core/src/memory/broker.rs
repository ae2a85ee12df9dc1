//! The in-process broker behind `memory://`: exchanges of topic queues (one per
//! `(topic, pool)`) and server queues (one per `(topic, server)`), with round-robin
//! delivery to competing consumers, as oslo's fake driver addresses messages.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use tokio::sync::mpsc;

/// A message body as it sits in a queue: the encoded JSON, shared between copies.
pub(crate) type Body = Arc<[u8]>;

/// A message handed to a consumer, with the queue it came from (for requeue).
pub(crate) struct Delivery {
    pub body: Body,
    pub queue: QueueRef,
}

pub(crate) type QueueRef = Arc<Mutex<Queue>>;

pub(crate) struct Queue {
    backlog: VecDeque<Body>,
    consumers: Vec<(u64, mpsc::UnboundedSender<Delivery>)>,
    next: usize,
    /// Whether a consumer ever declared it (publishers create queues implicitly, which
    /// does not count for mandatory publishing).
    declared: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Queue {
    fn new() -> QueueRef {
        Arc::new(Mutex::new(Queue {
            backlog: VecDeque::new(),
            consumers: Vec::new(),
            next: 0,
            declared: false,
        }))
    }
}

/// Puts a body on a queue: to the next consumer in turn, or into the backlog.
pub(crate) fn push(queue: &QueueRef, body: Body) {
    push_locked(&mut lock(queue), queue, body);
}

fn push_locked(q: &mut Queue, queue: &QueueRef, mut body: Body) {
    while !q.consumers.is_empty() {
        let i = q.next % q.consumers.len();
        q.next = q.next.wrapping_add(1);
        match q.consumers[i].1.send(Delivery {
            body,
            queue: queue.clone(),
        }) {
            Ok(()) => return,
            Err(mpsc::error::SendError(d)) => {
                body = d.body;
                q.consumers.remove(i);
            }
        }
    }
    q.backlog.push_back(body);
}

/// Adds a consumer and hands it the backlog, in order, under the queue's lock so a
/// concurrent publish cannot overtake older messages.
pub(crate) fn subscribe(queue: &QueueRef, id: u64, tx: mpsc::UnboundedSender<Delivery>) {
    let mut q = lock(queue);
    q.declared = true;
    q.consumers.push((id, tx));
    let backlog = std::mem::take(&mut q.backlog);
    for body in backlog {
        push_locked(&mut q, queue, body);
    }
}

/// Removes a consumer; what it already received stays with it.
pub(crate) fn unsubscribe(queue: &QueueRef, id: u64) {
    lock(queue).consumers.retain(|(cid, _)| *cid != id);
}

pub(crate) fn is_declared(queue: &QueueRef) -> bool {
    lock(queue).declared
}

#[derive(Default)]
struct Exchange {
    topics: HashMap<(String, Option<String>), QueueRef>,
    servers: HashMap<(String, String), QueueRef>,
}

/// One in-memory broker; transports whose URLs name the same virtual host share it.
#[derive(Default)]
pub(crate) struct Broker {
    exchanges: Mutex<HashMap<String, Exchange>>,
    replies: Mutex<HashMap<String, mpsc::UnboundedSender<Body>>>,
}

static BROKERS: LazyLock<Mutex<HashMap<String, Weak<Broker>>>> = LazyLock::new(Default::default);
static CONSUMER_IDS: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_consumer_id() -> u64 {
    CONSUMER_IDS.fetch_add(1, Ordering::Relaxed)
}

/// Where a message goes inside an exchange.
pub(crate) enum Route<'a> {
    /// Every `(topic, pool)` queue of the topic (the default one created if missing).
    Topic(&'a str),
    /// One server's queue.
    Server(&'a str, &'a str),
    /// Every server queue of the topic.
    Fanout(&'a str),
}

impl Broker {
    /// The broker for a virtual host, created on first use and dropped with its last
    /// transport.
    pub(crate) fn shared(name: &str) -> Arc<Broker> {
        let mut all = lock(&BROKERS);
        if let Some(b) = all.get(name).and_then(Weak::upgrade) {
            return b;
        }
        all.retain(|_, w| w.strong_count() > 0);
        let b = Arc::new(Broker::default());
        all.insert(name.to_string(), Arc::downgrade(&b));
        b
    }

    /// The topic queue `(topic, pool)`; a new pool queue starts with a copy of the
    /// default queue's backlog, as oslo's fake driver does.
    pub(crate) fn topic_queue(&self, exchange: &str, topic: &str, pool: Option<&str>) -> QueueRef {
        let mut exchanges = lock(&self.exchanges);
        let ex = exchanges.entry(exchange.to_string()).or_default();
        let key = (topic.to_string(), pool.map(str::to_string));
        if let Some(q) = ex.topics.get(&key) {
            return q.clone();
        }
        let q = Queue::new();
        if pool.is_some()
            && let Some(default) = ex.topics.get(&(topic.to_string(), None))
        {
            let copy = lock(default).backlog.clone();
            lock(&q).backlog = copy;
        }
        ex.topics.insert(key, q.clone());
        q
    }

    /// The server queue `(topic, server)`.
    pub(crate) fn server_queue(&self, exchange: &str, topic: &str, server: &str) -> QueueRef {
        let mut exchanges = lock(&self.exchanges);
        let ex = exchanges.entry(exchange.to_string()).or_default();
        ex.servers
            .entry((topic.to_string(), server.to_string()))
            .or_insert_with(Queue::new)
            .clone()
    }

    /// Delivers a body; returns whether some consumer-declared queue took it. The
    /// exchange stays locked while the queues are chosen and filled, so a pool queue
    /// created meanwhile either copies the message or receives it, never neither.
    pub(crate) fn publish(&self, exchange: &str, route: Route<'_>, body: Body) -> bool {
        let mut exchanges = lock(&self.exchanges);
        let ex = exchanges.entry(exchange.to_string()).or_default();
        let queues: Vec<QueueRef> = match route {
            Route::Topic(topic) => {
                ex.topics
                    .entry((topic.to_string(), None))
                    .or_insert_with(Queue::new);
                ex.topics
                    .iter()
                    .filter(|((t, _), _)| t == topic)
                    .map(|(_, q)| q.clone())
                    .collect()
            }
            Route::Server(topic, server) => vec![
                ex.servers
                    .entry((topic.to_string(), server.to_string()))
                    .or_insert_with(Queue::new)
                    .clone(),
            ],
            Route::Fanout(topic) => ex
                .servers
                .iter()
                .filter(|((t, _), _)| t == topic)
                .map(|(_, q)| q.clone())
                .collect(),
        };
        let routed = queues.iter().any(is_declared);
        for q in &queues {
            push(q, body.clone());
        }
        routed
    }

    /// Creates a reply queue.
    pub(crate) fn declare_reply_queue(&self, name: &str) -> mpsc::UnboundedReceiver<Body> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.replies).insert(name.to_string(), tx);
        rx
    }

    /// Deletes a reply queue.
    pub(crate) fn delete_reply_queue(&self, name: &str) {
        lock(&self.replies).remove(name);
    }

    /// Publishes to a reply queue; false when it does not exist (a basic.return).
    pub(crate) fn publish_reply(&self, name: &str, body: Body) -> bool {
        lock(&self.replies)
            .get(name)
            .is_some_and(|tx| tx.send(body).is_ok())
    }
}
