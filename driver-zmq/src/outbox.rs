//! Notification delivery: one copy to each pool, acked by the node that took it, and
//! the [`Outbox`] that keeps, in order, the notifications nobody takes yet.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use messaging_core::wire::request::new_id;
use messaging_core::{Error, Result};
use tokio::time::Instant;

use crate::destination::{Destination, Member};
use crate::frame::{Frame, Kind};
use crate::node::Node;
use crate::telemetry::{self, Depth};

/// How long a sender waits for one node's ack before trying another.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest pause between tries of a kept notification.
const MAX_PAUSE: Duration = Duration::from_millis(200);

/// How a message that asks for an ack fared.
pub enum Acked {
    /// Taken.
    Yes,
    /// The node has nobody for it.
    Refused(String),
    /// Not sent: the node is unreachable or its queue stayed full.
    Unreachable(String),
    /// Sent, but no answer in time.
    Silent(String),
}

/// Sends `frame` (a notification or confirmed cast) to `member` and waits for its
/// ack, at most [`ACK_TIMEOUT`].
pub async fn send_acked(node: &Node, member: &Member, frame: Frame, deadline: Instant) -> Acked {
    let _unanswered = match node.reserve(member, deadline).await {
        Ok(permit) => permit,
        Err(e) => return Acked::Unreachable(e.to_string()),
    };
    let mut ack = node.answers.expect_ack(frame.id.clone());
    if let Err(e) = node.send_to(member, frame, deadline).await {
        return Acked::Unreachable(e.to_string());
    }
    let wait = ACK_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()));
    match tokio::time::timeout(wait, &mut ack.rx).await {
        Ok(Ok(Ok(()))) => Acked::Yes,
        Ok(Ok(Err(reason))) => Acked::Refused(format!("{}: {reason}", member.address)),
        _ => {
            // Handed over (and counted so) but not confirmed: a failed publish too.
            telemetry::timed_out();
            Acked::Silent(format!("{} did not ack within {wait:?}", member.address))
        }
    }
}

/// One notification on its way.
pub struct Delivery {
    /// `notify/<exchange>/<topic>.<priority>`.
    pub key: Destination,
    /// The encoded notification.
    pub body: Bytes,
    /// When to give up.
    pub deadline: Instant,
    /// Its id: every copy sent to a pool carries `<id>#<pool>`, so a node that gets
    /// one twice (an ack was late) takes it once.
    id: String,
    /// The pools still owed a copy; `None` until the first lookup found some.
    pools: Option<Vec<Option<String>>>,
}

impl Delivery {
    /// A notification for `key`, given up at `deadline`.
    pub fn new(key: Destination, body: Bytes, deadline: Instant) -> Delivery {
        Delivery {
            key,
            body,
            deadline,
            id: new_id(),
            pools: None,
        }
    }

    /// Gives one listener of each pool its copy; a refusal or a silent node makes it
    /// try another member. `Ok(false)`: nobody takes it now (nobody registered, or
    /// every node tried refused or is unreachable): try again later.
    pub async fn attempt(&mut self, node: &Node, turn: &AtomicUsize) -> Result<bool> {
        let mut last_error = String::from("no listener acked");
        while Instant::now() < self.deadline {
            // A matchmaker that fails now is tried again later, as when nobody is
            // registered yet.
            let members = match node.lookup(&self.key).await {
                Ok(members) => members,
                Err(e) => {
                    tracing::debug!(key = %self.key, error = %e, "lookup failed; notification kept");
                    return Ok(false);
                }
            };
            if members.is_empty() {
                return Ok(false);
            }
            let mut by_pool: BTreeMap<Option<String>, Vec<&Member>> = BTreeMap::new();
            for m in members.iter() {
                by_pool.entry(m.pool.clone()).or_default().push(m);
            }
            let wanted = self
                .pools
                .get_or_insert_with(|| by_pool.keys().cloned().collect());
            let mut still = Vec::new();
            let mut silent = false;
            // One turn per round for every pool, so each pool rotates over its members.
            let n = turn.fetch_add(1, Ordering::Relaxed);
            for pool in wanted.iter() {
                let Some(candidates) = by_pool.get(pool) else {
                    // That pool's listeners are gone: nobody to give its copy to.
                    continue;
                };
                let member = candidates[n % candidates.len()];
                let destination = with_pool(&self.key, pool);
                let id = match pool {
                    Some(p) => format!("{}#{p}", self.id),
                    None => self.id.clone(),
                };
                let frame =
                    Frame::new(Kind::Notify, id, destination.to_string(), self.body.clone());
                match send_acked(node, member, frame, self.deadline).await {
                    Acked::Yes => {}
                    // Unreachable is as good as refused: nobody takes it there now.
                    Acked::Refused(why) | Acked::Unreachable(why) => {
                        last_error = why;
                        still.push(pool.clone());
                    }
                    Acked::Silent(why) => {
                        silent = true;
                        last_error = why;
                        still.push(pool.clone());
                    }
                }
            }
            if still.is_empty() {
                return Ok(true);
            }
            node.forget(&self.key);
            *wanted = still;
            if !silent {
                return Ok(false);
            }
        }
        Err(Error::DeliveryFailure(
            format!("notification to {} not delivered: {last_error}", self.key).into(),
        ))
    }
}

/// `key` addressed to `pool`.
fn with_pool(key: &Destination, pool: &Option<String>) -> Destination {
    match key {
        Destination::Notifications {
            exchange, topic, ..
        } => Destination::Notifications {
            exchange: exchange.clone(),
            topic: topic.clone(),
            pool: pool.clone(),
        },
        other => other.clone(),
    }
}

/// Notifications nobody takes yet, kept in order per destination and tried again
/// until a listener takes them or their deadline passes. Bounded: at most
/// `capacity` wait per destination. Counted in the queue depth gauge while they wait
/// (not while one is being tried).
pub struct Outbox {
    node: Arc<Node>,
    capacity: usize,
    queues: Mutex<HashMap<Destination, VecDeque<Delivery>>>,
    waiting: Depth,
}

impl Outbox {
    /// An empty outbox of `node`.
    pub fn new(node: Arc<Node>, capacity: usize) -> Arc<Outbox> {
        Arc::new(Outbox {
            node,
            capacity,
            queues: Mutex::default(),
            waiting: Depth::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Destination, VecDeque<Delivery>>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether notifications for `key` wait here (later ones must queue behind them).
    pub fn holds(&self, key: &Destination) -> bool {
        self.lock().contains_key(key)
    }

    /// Keeps `delivery` behind those already waiting for its destination.
    pub fn keep(self: &Arc<Self>, delivery: Delivery) -> Result<()> {
        let key = delivery.key.clone();
        let mut queues = self.lock();
        let start = !queues.contains_key(&key);
        let queue = queues.entry(key.clone()).or_default();
        if queue.len() >= self.capacity {
            return Err(Error::DeliveryFailure(
                format!(
                    "{} notifications to {key} already wait for a listener (zmq_send_queue)",
                    queue.len()
                )
                .into(),
            ));
        }
        queue.push_back(delivery);
        self.waiting.add(1);
        drop(queues);
        if start {
            tracing::debug!(%key, "no listener yet; notifications kept until one registers");
            tokio::spawn(self.clone().drain(key));
        }
        Ok(())
    }

    /// Delivers the notifications kept for `key`, in order; ends when none is left.
    async fn drain(self: Arc<Self>, key: Destination) {
        let turn = AtomicUsize::new(0);
        let mut pause = Duration::from_millis(10);
        loop {
            let next = self.lock().get_mut(&key).and_then(VecDeque::pop_front);
            let Some(mut delivery) = next else {
                return;
            };
            self.waiting.sub(1);
            let done = match delivery.attempt(&self.node, &turn).await {
                Ok(true) => true,
                Ok(false) if Instant::now() >= delivery.deadline => {
                    tracing::error!(%key, "notification dropped: no listener took it within zmq_send_timeout");
                    true
                }
                Ok(false) => false,
                Err(e) => {
                    tracing::error!(%key, error = %e, "notification dropped");
                    true
                }
            };
            let finished = {
                let mut queues = self.lock();
                match queues.get_mut(&key) {
                    None => true,
                    Some(queue) => {
                        if !done {
                            queue.push_front(delivery);
                            self.waiting.add(1);
                        }
                        if queue.is_empty() {
                            queues.remove(&key);
                        }
                        !queues.contains_key(&key)
                    }
                }
            };
            if finished {
                return;
            }
            if done {
                pause = Duration::from_millis(10);
            } else {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    }
}
