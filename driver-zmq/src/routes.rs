//! [`Routes`]: the servers and listeners of one node, and how a message that reached
//! the node is handed to them: a bare call to one server of the topic (round robin), a
//! fanout to all, a notification to one listener per pool. A message nobody here takes
//! is refused, so its sender tries another node.
//!
//! Each server and listener takes at most [`BACKLOG`] messages ahead of what it has
//! handled. When one is that far behind, delivering to it waits for room, and so does
//! the task that reads the node's connections: the senders' TCP windows and then their
//! bounded send queues fill, and their sends fail with a timeout instead of this
//! node's memory growing. The cost is that while one server of a node is that far
//! behind, the node's other servers wait too.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use messaging_core::Result;
use messaging_core::driver::{
    Disposition, DuplicateFilter, IncomingNotification, IncomingRequest, PublishReply,
    ReceivedRequest, ReplyResponder, Responder, Settle,
};
use messaging_core::wire::{NotificationMessage, Reply};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::destination::Destination;
use crate::frame::{Frame, Kind};
use crate::reply_path::ReplyPath;

/// How many messages a server or listener takes ahead of what it has handled
/// (requests waiting for a server's free slots; notifications not yet settled).
pub const BACKLOG: usize = 1024;

/// A server's queue of requests, [`BACKLOG`] long.
pub type Requests = mpsc::Sender<IncomingRequest>;
type Notifications = mpsc::UnboundedSender<IncomingNotification>;

/// What handing a message over left to do.
pub enum Delivered {
    /// Handed over; the answer to send back, if any.
    Done(Option<Frame>),
    /// A server or listener had no room: the future waits for it, hands the message
    /// over, and gives the answer to send back. The node reads nothing else meanwhile.
    Waiting(Pin<Box<dyn Future<Output = Option<Frame>> + Send>>),
}

/// A notification listener's queue: unbounded, because a requeued notification
/// goes back from a destructor, but only [`BACKLOG`] unsettled at once (`room`).
#[derive(Clone)]
pub struct ListenerQueue {
    /// Where its notifications go.
    pub tx: Notifications,
    /// Set when the listener stops: requeues are then dropped, not handed back.
    pub stopped: Arc<AtomicBool>,
    /// One permit per notification taken and not yet settled.
    pub room: Arc<Semaphore>,
}

impl ListenerQueue {
    /// The queue of a listener that takes from `tx`'s receiver and sets `stopped`.
    pub fn new(tx: Notifications, stopped: Arc<AtomicBool>) -> ListenerQueue {
        ListenerQueue {
            tx,
            stopped,
            room: Arc::new(Semaphore::new(BACKLOG)),
        }
    }

    /// Hands `message` over, holding `permit` until it is settled.
    fn hand_over(&self, message: NotificationMessage, body: Bytes, permit: OwnedSemaphorePermit) {
        let settle = ZmqSettle {
            payload: Some(body),
            queue: self.clone(),
            permit: Some(permit),
        };
        let _ = self.tx.send(IncomingNotification {
            message,
            settle: Box::new(settle),
        });
    }
}

/// Identifies one listener's routes, to remove them together.
pub type RouteId = u64;

/// One notification listener's route.
struct ListenerRoute {
    id: RouteId,
    pool: String,
    queue: ListenerQueue,
}

#[derive(Default)]
struct Table {
    /// Destination text → servers.
    rpc: HashMap<String, Vec<(RouteId, Requests)>>,
    /// Key text (`notify/<exchange>/<topic>.<priority>`) → listeners.
    notify: HashMap<String, Vec<ListenerRoute>>,
}

/// How many recent notification ids a node remembers to drop resent copies.
const SEEN_NOTIFICATIONS: usize = 4096;

/// The servers and listeners of one node.
pub struct Routes {
    table: Mutex<Table>,
    next_id: AtomicU64,
    turn: AtomicU64,
    /// Notifications taken lately: a sender that missed the ack sends again.
    seen: Mutex<DuplicateFilter>,
    /// Answers calls on the way they came.
    answers: Arc<Answerer>,
}

impl Default for Routes {
    fn default() -> Self {
        Routes {
            table: Mutex::default(),
            next_id: AtomicU64::default(),
            turn: AtomicU64::default(),
            seen: Mutex::new(DuplicateFilter::new(SEEN_NOTIFICATIONS)),
            answers: Arc::new(Answerer),
        }
    }
}

impl Routes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh id for a listener's routes.
    pub fn new_id(&self) -> RouteId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Routes requests for `destination` to a server.
    pub fn add_server(&self, id: RouteId, destination: &Destination, tx: Requests) {
        self.lock()
            .rpc
            .entry(destination.to_string())
            .or_default()
            .push((id, tx));
    }

    /// Routes notifications for `key` in `pool` (`""`: none) to a listener's queue.
    pub fn add_listener(&self, id: RouteId, key: &Destination, pool: &str, queue: ListenerQueue) {
        self.lock()
            .notify
            .entry(key.key().to_string())
            .or_default()
            .push(ListenerRoute {
                id,
                pool: pool.to_string(),
                queue,
            });
    }

    /// Removes every route of `id`.
    pub fn remove(&self, id: RouteId) {
        let mut table = self.lock();
        table.rpc.retain(|_, servers| {
            servers.retain(|(i, _)| *i != id);
            !servers.is_empty()
        });
        table.notify.retain(|_, listeners| {
            listeners.retain(|l| l.id != id);
            !listeners.is_empty()
        });
    }

    fn next_turn(&self) -> usize {
        self.turn.fetch_add(1, Ordering::Relaxed) as usize
    }

    /// Hands a call, cast or fanout to this node's servers. The answer to send back,
    /// if any: a refusal when no server here takes a call or confirmed cast, an ack
    /// once a server took a confirmed cast.
    pub fn deliver_request(&self, mut frame: Frame, path: &ReplyPath) -> Delivered {
        let fanout = frame.kind == Kind::Fanout;
        // The servers that take it: one in turn, or all for a fanout. A server whose
        // receiver is gone (dropped without stop) takes nothing.
        let (one, mut all): (Option<Requests>, Vec<Requests>) = {
            let table = self.lock();
            let open = table
                .rpc
                .get(frame.destination_str())
                .into_iter()
                .flatten()
                .map(|(_, tx)| tx)
                .filter(|tx| !tx.is_closed());
            if fanout {
                (None, open.cloned().collect())
            } else {
                let n = open.clone().count();
                let chosen = (n > 0)
                    .then(|| open.clone().nth(self.next_turn() % n))
                    .flatten();
                (chosen.cloned(), Vec::new())
            }
        };
        let last = match one.or_else(|| all.pop()) {
            Some(last) => last,
            None => {
                let destination = frame.destination_str();
                tracing::debug!(destination, kind = ?frame.kind, "no server here; refused");
                let reason = format!("no server for {destination} on this node");
                return Delivered::Done(
                    matches!(frame.kind, Kind::Call | Kind::ConfirmedCast)
                        .then(|| Frame::answer(Kind::Refused, frame.id.clone(), reason)),
                );
            }
        };
        // Decoded by the server on the request's own task: this one reads the node's
        // socket for every server and is the one that bounds the rate.
        let request = ReceivedRequest::Encoded(std::mem::take(&mut frame.body));
        let responder = (frame.kind == Kind::Call).then(|| {
            let caller = Caller {
                path: path.clone(),
                id: frame.id.clone(),
            };
            let msg_id = String::from_utf8_lossy(&frame.id).into_owned();
            Box::new(ReplyResponder::new(self.answers.clone(), caller, msg_id))
                as Box<dyn Responder>
        });
        let answer = (frame.kind == Kind::ConfirmedCast)
            .then(|| Frame::answer(Kind::Ack, frame.id.clone(), ""));
        // Every other server gets a copy; the last gets the request itself. Those
        // without room wait for it.
        let mut full = Vec::new();
        for tx in all {
            let copy = IncomingRequest {
                request: request.clone(),
                responder: None,
            };
            if let Err(mpsc::error::TrySendError::Full(copy)) = tx.try_send(copy) {
                full.push((tx, copy));
            }
        }
        if let Err(mpsc::error::TrySendError::Full(incoming)) =
            last.try_send(IncomingRequest { request, responder })
        {
            full.push((last, incoming));
        }
        if full.is_empty() {
            return Delivered::Done(answer);
        }
        tracing::debug!(
            destination = frame.destination_str(),
            "a server's backlog is full; waiting for room"
        );
        Delivered::Waiting(Box::pin(async move {
            for (tx, incoming) in full {
                // Fails only when the server is gone, which takes nothing.
                let _ = tx.send(incoming).await;
            }
            answer
        }))
    }

    /// Hands a notification to one listener of its pool (or of every pool when it
    /// names none). Returns the answer: an ack, or a refusal when nobody here takes it.
    pub fn deliver_notification(&self, frame: Frame) -> Delivered {
        let ack = |id| Delivered::Done(Some(Frame::answer(Kind::Ack, id, "")));
        let Some(Destination::Notifications {
            exchange,
            topic,
            pool,
        }) = Destination::parse(frame.destination_str())
        else {
            tracing::warn!(
                destination = frame.destination_str(),
                "notification to a malformed destination dropped"
            );
            return ack(frame.id);
        };
        let key = Destination::Notifications {
            exchange,
            topic,
            pool: None,
        }
        .to_string();
        let chosen: Vec<ListenerQueue> = {
            let table = self.lock();
            let listeners: Vec<&ListenerRoute> = table
                .notify
                .get(&key)
                .map(|all| all.iter().filter(|l| !l.queue.tx.is_closed()).collect())
                .unwrap_or_default();
            let mut pools: Vec<&str> = match &pool {
                Some(p) => vec![p.as_str()],
                None => listeners.iter().map(|l| l.pool.as_str()).collect(),
            };
            pools.sort_unstable();
            pools.dedup();
            // One turn for every pool, so each pool rotates over its members.
            let n = self.next_turn();
            pools
                .into_iter()
                .filter_map(|p| {
                    let members: Vec<&&ListenerRoute> =
                        listeners.iter().filter(|l| l.pool == p).collect();
                    (!members.is_empty()).then(|| members[n % members.len()].queue.clone())
                })
                .collect()
        };
        if chosen.is_empty() {
            let reason = format!("no listener for {} on this node", frame.destination_str());
            return Delivered::Done(Some(Frame::answer(Kind::Refused, frame.id, reason)));
        }
        if self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check_and_remember(&frame.id_str())
        {
            tracing::debug!(id = %frame.id_str(), "notification taken already; acked again");
            return ack(frame.id);
        }
        let message = match NotificationMessage::decode(&frame.body) {
            Ok(m) => m,
            Err(e) => {
                // Acked: sending it elsewhere would not make it readable.
                tracing::warn!(destination = frame.destination_str(), error = %e, "malformed notification dropped");
                return ack(frame.id);
            }
        };
        let mut full = Vec::new();
        for queue in chosen {
            match queue.room.clone().try_acquire_owned() {
                Ok(permit) => queue.hand_over(message.clone(), frame.body.clone(), permit),
                Err(_) => full.push(queue),
            }
        }
        if full.is_empty() {
            return ack(frame.id);
        }
        tracing::debug!(
            destination = frame.destination_str(),
            "a listener's backlog is full; waiting for room"
        );
        Delivered::Waiting(Box::pin(async move {
            for queue in full {
                // Permits come back as the listener settles what it holds, or drops
                // it all when it goes away.
                if let Ok(permit) = queue.room.clone().acquire_owned().await {
                    queue.hand_over(message.clone(), frame.body.clone(), permit);
                }
            }
            Some(Frame::answer(Kind::Ack, frame.id, ""))
        }))
    }
}

/// A call's way back: the path its request came by, and its frame id.
struct Caller {
    path: ReplyPath,
    id: Bytes,
}

/// Sends replies on the path their call came by.
struct Answerer;

#[async_trait]
impl PublishReply for Answerer {
    type Address = Caller;

    async fn publish_reply(&self, caller: &Caller, reply: &Reply) -> Result<()> {
        // Bare, as requests are (see `frame`).
        let body = messaging_core::wire::envelope::encode_bare(reply)?;
        caller
            .path
            .answer(Frame::answer(Kind::Reply, caller.id.clone(), body))
            .await
    }
}

/// Settles a notification this node took: a requeued (or dropped, unsettled) one is
/// handed to the same listener again, unless it stopped (then it is dropped with a
/// warning: there is no broker to give it back to). The sender had its ack when the
/// node took it. Holds its place in the listener's backlog until settled.
struct ZmqSettle {
    payload: Option<Bytes>,
    queue: ListenerQueue,
    permit: Option<OwnedSemaphorePermit>,
}

#[async_trait]
impl Settle for ZmqSettle {
    async fn settle(mut self: Box<Self>, disposition: Disposition) -> Result<()> {
        if disposition == Disposition::Ack {
            self.payload = None;
        }
        // A requeue happens in drop.
        Ok(())
    }
}

impl Drop for ZmqSettle {
    fn drop(&mut self) {
        let Some(payload) = self.payload.take() else {
            return;
        };
        // Checked first: a failed send would drop the copy and come back here.
        if self.queue.stopped.load(Ordering::Relaxed) || self.queue.tx.is_closed() {
            tracing::warn!("requeued notification dropped: its listener stopped");
            return;
        }
        // The bytes decoded once already.
        if let (Ok(message), Some(permit)) =
            (NotificationMessage::decode(&payload), self.permit.take())
        {
            self.queue.hand_over(message, payload, permit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use messaging_core::Context;

    fn notification() -> Bytes {
        let message = NotificationMessage {
            message_id: "m".into(),
            publisher_id: "p".into(),
            event_type: "e".into(),
            priority: "INFO".into(),
            payload: serde_json::json!(1),
            timestamp: "2026-11-22 00:00:00.000000".into(),
            unique_id: None,
            context: Context::new(),
        };
        Bytes::from(
            message
                .encode(messaging_core::wire::ContextPacking::Flattened, true)
                .unwrap(),
        )
    }

    /// The answer of a delivery that had room.
    fn done(delivered: Delivered) -> Frame {
        match delivered {
            Delivered::Done(Some(answer)) => answer,
            Delivered::Done(None) => panic!("no answer"),
            Delivered::Waiting(_) => panic!("waited for room"),
        }
    }

    fn key() -> Destination {
        Destination::Notifications {
            exchange: "x".into(),
            topic: "t.info".into(),
            pool: None,
        }
    }

    #[test]
    fn a_listener_whose_receiver_is_gone_takes_nothing() {
        let routes = Routes::default();
        let (tx, rx) = mpsc::unbounded_channel();
        routes.add_listener(
            routes.new_id(),
            &key(),
            "",
            ListenerQueue::new(tx, Arc::default()),
        );
        drop(rx);
        let answer = done(routes.deliver_notification(Frame::new(
            Kind::Notify,
            "n1",
            key().to_string(),
            notification(),
        )));
        assert_eq!(answer.kind, Kind::Refused);
    }

    #[tokio::test]
    async fn unsettled_notifications_go_back_until_the_listener_stops() {
        let routes = Routes::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let stopped = Arc::new(AtomicBool::new(false));
        routes.add_listener(
            routes.new_id(),
            &key(),
            "",
            ListenerQueue::new(tx, stopped.clone()),
        );
        let frame = Frame::new(Kind::Notify, "n1", key().to_string(), notification());
        assert_eq!(
            done(routes.deliver_notification(frame.clone())).kind,
            Kind::Ack
        );
        // Dropped unsettled: handed back.
        drop(rx.recv().await.unwrap());
        let again = rx.recv().await.unwrap();
        // Resent by its sender: taken once.
        assert_eq!(done(routes.deliver_notification(frame)).kind, Kind::Ack);
        assert!(rx.try_recv().is_err());
        // Once stopped, dropping it lets it go (no endless requeue), and with the
        // receiver gone, dropping does not recurse.
        stopped.store(true, Ordering::Relaxed);
        drop(again);
        assert!(rx.try_recv().is_err());
        drop(rx);
    }

    #[tokio::test]
    async fn a_server_takes_its_backlog_then_delivery_waits_for_room() {
        let routes = Routes::default();
        let destination = Destination::Topic {
            exchange: "x".into(),
            topic: "t".into(),
        };
        let (tx, mut rx) = mpsc::channel(BACKLOG);
        routes.add_server(routes.new_id(), &destination, tx);
        let body = messaging_core::wire::Request::new("m", Default::default(), Context::new())
            .encode(messaging_core::wire::ContextPacking::Flattened)
            .unwrap();
        let cast = |id: usize| {
            Frame::new(
                Kind::ConfirmedCast,
                id.to_string(),
                destination.to_string(),
                body.clone(),
            )
        };
        for id in 0..BACKLOG {
            assert_eq!(
                done(routes.deliver_request(cast(id), &ReplyPath::None)).kind,
                Kind::Ack
            );
        }
        let Delivered::Waiting(waiting) = routes.deliver_request(cast(BACKLOG), &ReplyPath::None)
        else {
            panic!("a full backlog takes nothing more at once");
        };
        let waiting = tokio::spawn(waiting);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        // The server takes one: the waiting request goes in, and is acked then.
        rx.recv().await.unwrap();
        let answer = waiting.await.unwrap().unwrap();
        assert_eq!((answer.kind, answer.id_str().as_ref()), (Kind::Ack, "1024"));
        assert_eq!(rx.len(), BACKLOG);
    }

    #[tokio::test]
    async fn a_listener_holds_its_backlog_until_it_settles() {
        let routes = Routes::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        routes.add_listener(
            routes.new_id(),
            &key(),
            "",
            ListenerQueue::new(tx, Arc::default()),
        );
        let notify = |id: usize| {
            Frame::new(
                Kind::Notify,
                id.to_string(),
                key().to_string(),
                notification(),
            )
        };
        for id in 0..BACKLOG {
            assert_eq!(
                done(routes.deliver_notification(notify(id))).kind,
                Kind::Ack
            );
        }
        let Delivered::Waiting(waiting) = routes.deliver_notification(notify(BACKLOG)) else {
            panic!("a listener holding its backlog takes nothing more at once");
        };
        let waiting = tokio::spawn(waiting);
        // Taken off the channel is not enough: it still holds its place until settled.
        let first = rx.recv().await.unwrap();
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        first.settle.settle(Disposition::Ack).await.unwrap();
        let answer = waiting.await.unwrap().unwrap();
        assert_eq!(answer.kind, Kind::Ack);
        assert_eq!(rx.len(), BACKLOG);
    }
}
