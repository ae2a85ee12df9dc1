//! [`Link`]: one outgoing connection (a DEALER to a node's ROUTER, or to the proxy)
//! with a bounded send queue of its own, so a slow or dead peer holds up only the
//! sends to it. The link reconnects with backoff; while the peer cannot be reached,
//! new sends fail at once and what was waiting is answered as refused, so senders go
//! to another node.
//!
//! A direct link also keeps a window of casts and fanouts: at most its capacity of
//! them sent and not yet [`Kind::Taken`] by the receiving node. zeromq itself queues
//! up to 100 000 messages per peer, so without the window a receiver that falls
//! behind (and pushes back by reading no more) would let casts pile up here.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use zeromq::util::PeerIdentity;
use zeromq::{
    DealerSendHalf, DealerSocket, Socket, SocketOptions, SocketRecv, SocketSend, ZmqMessage,
};

use messaging_core::{Error, Result};

use crate::frame::{Frame, Kind};
use crate::telemetry::{self, Depth};

/// What a link does with the messages that come back on it (answers, and through the
/// proxy, requests from other nodes). What it returns, if anything, is awaited before
/// the link reads on: how a server without room pushes back.
pub type OnMessage = Arc<dyn Fn(Vec<Bytes>) -> Option<Pending> + Send + Sync>;

/// Work a message left that the reader of a connection waits for.
pub type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A message waiting in a link's queue.
struct Outgoing {
    message: ZmqMessage,
    deadline: Instant,
}

/// One outgoing connection.
pub struct Link {
    address: String,
    capacity: usize,
    tx: mpsc::Sender<Outgoing>,
    task: tokio::task::AbortHandle,
    /// Why the last connection attempt failed, while it is not connected.
    down: Arc<std::sync::Mutex<Option<String>>>,
    /// Messages sent and not answered yet (calls, notifications): zeromq queues up
    /// to 100 000 messages per peer by itself, so a peer that stopped reading is
    /// noticed here instead.
    unanswered: Arc<Semaphore>,
    /// The connection's send half while connected, shared by the task and senders
    /// that find the queue empty.
    connection: Arc<tokio::sync::Mutex<Option<DealerSendHalf>>>,
    /// Messages in the queue or being sent by the task: a sender may send directly
    /// only when none are, so one sender's messages keep their order. Also the
    /// link's part of the queue depth gauge.
    queued: Arc<Depth>,
    /// Casts and fanouts on their way, on a direct link.
    window: Option<Arc<Window>>,
}

/// Room for casts and fanouts that the receiver has not yet said it took.
struct Window {
    room: Semaphore,
    /// Sent and not yet taken.
    out: AtomicUsize,
}

impl Window {
    fn new(size: usize) -> Window {
        Window {
            room: Semaphore::new(size),
            out: AtomicUsize::new(0),
        }
    }

    /// Takes room for one message, until `deadline`.
    async fn take(&self, deadline: Instant) -> std::result::Result<(), ()> {
        let permit = match self.room.try_acquire() {
            Ok(permit) => permit,
            // Boxed: waiting is rare, and its future would make every send's large.
            Err(_) => {
                match Box::pin(tokio::time::timeout_at(deadline, self.room.acquire())).await {
                    Ok(Ok(permit)) => permit,
                    _ => return Err(()),
                }
            }
        };
        permit.forget();
        self.out.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Gives back the room of `n` messages (taken by the receiver, or never sent).
    fn release(&self, n: usize) {
        let released = self
            .out
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |out| {
                Some(out.saturating_sub(n))
            })
            .map_or(0, |out| out.min(n));
        self.room.add_permits(released);
    }

    /// Gives back everything: what was on a lost connection will not be taken.
    fn reset(&self) {
        self.room.add_permits(self.out.swap(0, Ordering::AcqRel));
    }
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("address", &self.address)
            .finish()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A peer that takes longer to accept a connection is reported unreachable (and
/// tried again after a backoff).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

impl Link {
    /// Starts connecting to `address` (`host:port`), as `identity` if given; what
    /// comes back goes to `on_message`. At most `capacity` messages wait, and on a
    /// direct link (no `identity`: to a node, not the proxy) at most `capacity` casts
    /// and fanouts are on their way. With `give_up`, the link closes once the peer
    /// has been unreachable that long with nothing to send (see [`Link::is_closed`]).
    pub fn start(
        address: &str,
        identity: Option<Bytes>,
        capacity: usize,
        on_message: OnMessage,
        give_up: Option<Duration>,
    ) -> Link {
        let (tx, rx) = mpsc::channel(capacity);
        let down: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
        let connection: Arc<tokio::sync::Mutex<Option<DealerSendHalf>>> = Arc::default();
        let queued: Arc<Depth> = Arc::default();
        let window = identity.is_none().then(|| Arc::new(Window::new(capacity)));
        let task = tokio::spawn(run(
            Task {
                address: address.to_string(),
                identity,
                on_message,
                down: down.clone(),
                give_up,
                connection: connection.clone(),
                queued: queued.clone(),
                window: window.clone(),
            },
            rx,
        ));
        Link {
            address: address.to_string(),
            capacity,
            tx,
            task: task.abort_handle(),
            down,
            unanswered: Arc::new(Semaphore::new(capacity)),
            connection,
            queued,
            window,
        }
    }

    /// Queues `message`, waiting for room until `deadline`. Fails at once while the
    /// peer cannot be reached, so senders can go elsewhere.
    pub async fn send(&self, message: ZmqMessage, deadline: Instant) -> Result<()> {
        if let Some(e) = self.unreachable() {
            return Err(e);
        }
        let mut message = message;
        if let Some(window) = &self.window
            && kind_of(&message).is_some_and(Kind::is_counted_until_taken)
            && window.take(deadline).await.is_err()
        {
            return Err(Error::Timeout(
                format!(
                    "{} casts to {} are not taken yet: the peer is slow or unreachable",
                    self.capacity, self.address
                )
                .into(),
            ));
        }
        // A message answered, with nothing before it and the connection free, goes
        // from here, saving its sender the hop through the link's task. Others are
        // queued, to be sent in batches: their senders wait for nothing.
        if answer_expected(&message)
            && self.queued.load() == 0
            && let Ok(mut connection) = self.connection.try_lock()
            && self.queued.load() == 0
            && let Some(dealer) = connection.as_mut()
        {
            let spare = message.clone();
            match dealer.send(message).await {
                Ok(()) => return Ok(()),
                // The connection is gone: the message goes through the queue, where
                // the task answers it as refused and reconnects.
                Err(zeromq::ZmqError::ReturnToSender { message: back, .. }) => message = back,
                Err(_) => message = spare,
            }
            *connection = None;
        }
        self.queued.add(1);
        let outgoing = Outgoing { message, deadline };
        // The common case takes no timer.
        let outgoing = match self.tx.try_send(outgoing) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.queued.sub(1);
                return Err(self.closed());
            }
            Err(mpsc::error::TrySendError::Full(o)) => o,
        };
        // Boxed: waiting for room is rare, and its future would make every send's large.
        let queued = Box::pin(tokio::time::timeout_at(deadline, self.tx.send(outgoing))).await;
        if !matches!(queued, Ok(Ok(()))) {
            self.queued.sub(1);
        }
        match queued {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(self.closed()),
            Err(_) => Err(Error::Timeout(format!(
                "the send queue to {} stayed full ({} messages): the peer is slow or unreachable",
                self.address, self.capacity
            ).into())),
        }
    }

    /// Whether the link gave up on its peer: a new one must be started to reach it.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    fn unreachable(&self) -> Option<Error> {
        let down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        down.as_ref().map(|why| {
            let message = format!("ZeroMQ peer {} unreachable: {why}", self.address);
            Error::Transport(messaging_core::Detail::new(
                messaging_core::ErrorKind::Unreachable,
                message,
            ))
        })
    }

    /// Room for one more message that expects an answer; hold the permit until the
    /// answer came or the sender gave up. Waits until `deadline`; fails at once while
    /// the peer cannot be reached.
    pub async fn reserve(&self, deadline: Instant) -> Result<OwnedSemaphorePermit> {
        if let Some(e) = self.unreachable() {
            return Err(e);
        }
        // The common case needs no timer.
        if let Ok(permit) = self.unanswered.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let reserving = self.unanswered.clone().acquire_owned();
        match tokio::time::timeout_at(deadline, reserving).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(self.closed()),
            Err(_) => Err(Error::Timeout(
                format!(
                    "{} messages to {} are unanswered: the peer is slow or unreachable",
                    self.capacity, self.address
                )
                .into(),
            )),
        }
    }

    fn closed(&self) -> Error {
        let message = format!("the connection to {} is closed", self.address);
        Error::Transport(messaging_core::Detail::new(
            messaging_core::ErrorKind::ConnectionLost,
            message,
        ))
    }
}

/// Aborts a task when dropped: the reader of a connection ends with it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a link's task works with.
struct Task {
    address: String,
    identity: Option<Bytes>,
    on_message: OnMessage,
    down: Arc<std::sync::Mutex<Option<String>>>,
    give_up: Option<Duration>,
    connection: Arc<tokio::sync::Mutex<Option<DealerSendHalf>>>,
    queued: Arc<Depth>,
    window: Option<Arc<Window>>,
}

/// Connects, sends, and reconnects until the link is dropped, or (with `give_up`)
/// until the peer has been unreachable that long with nothing to send.
async fn run(task: Task, mut rx: mpsc::Receiver<Outgoing>) {
    let Task {
        address,
        identity,
        on_message,
        down,
        give_up,
        connection,
        queued,
        window,
    } = task;
    let release = |n: usize| {
        if let Some(window) = &window {
            window.release(n);
        }
    };
    let set_down = |why: Option<String>| *down.lock().unwrap_or_else(|e| e.into_inner()) = why;
    let endpoint = format!("tcp://{address}");
    let mut backoff = FIRST_BACKOFF;
    let mut down_since: Option<Instant> = None;
    loop {
        let mut options = SocketOptions::default();
        options.connect_timeout(CONNECT_TIMEOUT);
        if let Some(id) = &identity {
            match PeerIdentity::try_from(id.clone()) {
                Ok(id) => {
                    options.peer_identity(id);
                }
                Err(e) => {
                    tracing::error!(%address, error = %e, "invalid ZeroMQ identity; link stopped");
                    return;
                }
            }
        }
        let mut dealer = DealerSocket::with_options(options);
        // Made before connecting: the connection's own event is the first one.
        let events = dealer.monitor();
        if let Err(e) = dealer.connect(&endpoint).await {
            let reason = e.to_string();
            if down_since.is_none() {
                tracing::warn!(%address, error = %reason, "cannot connect to ZeroMQ peer; retrying with backoff");
            } else {
                tracing::debug!(%address, error = %reason, retry_in = ?backoff, "ZeroMQ peer still unreachable");
            }
            let since = *down_since.get_or_insert_with(Instant::now);
            set_down(Some(reason.clone()));
            let refused = refuse_waiting(&mut rx, &on_message, &address, &reason, &queued);
            release(refused.casts);
            if refused.all == 0 && give_up.is_some_and(|after| since.elapsed() >= after) {
                tracing::debug!(%address, "ZeroMQ peer unreachable for long; link closed");
                // What a sender queued meanwhile is refused too (and leaves the
                // queue's count), rather than dropped with the queue.
                rx.close();
                let refused = refuse_waiting(&mut rx, &on_message, &address, &reason, &queued);
                release(refused.casts);
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        }
        if down_since.take().is_some() {
            tracing::info!(%address, "ZeroMQ peer reachable again");
        }
        tracing::debug!(%address, "connected to ZeroMQ peer");
        backoff = FIRST_BACKOFF;
        let (send, mut recv) = dealer.split();
        // Casts sent on an earlier connection will not be taken now.
        if let Some(window) = &window {
            window.reset();
        }
        *connection.lock().await = Some(send);
        set_down(None);
        // The peer counted while this connection lasts (a link reconnects with a new
        // socket).
        let peers = AbortOnDrop(tokio::spawn(telemetry::count_peers(events)));
        let on = on_message.clone();
        let reader_window = window.clone();
        let _reader = AbortOnDrop(tokio::spawn(async move {
            while let Ok(message) = recv.recv().await {
                let frames = message.into_vec();
                if let Some(window) = &reader_window
                    && let Some(n) = taken(&frames)
                {
                    window.release(n);
                    continue;
                }
                if let Some(pending) = on(frames) {
                    pending.await;
                }
            }
        }));
        loop {
            let Some(first) = rx.recv().await else {
                return;
            };
            let batch = Batch::gather(first, &mut rx);
            release(batch.expired);
            let mut guard = connection.lock().await;
            let sent = match (guard.as_mut(), batch.message) {
                (_, None) => Ok(()),
                (Some(dealer), Some(message)) => dealer.send(message).await,
                (None, Some(_)) => Err(zeromq::ZmqError::NoMessage),
            };
            queued.sub(batch.taken);
            if let Err(e) = sent {
                *guard = None;
                drop(guard);
                let reason = e.to_string();
                tracing::warn!(%address, error = %reason, "ZeroMQ peer connection lost; reconnecting");
                set_down(Some(reason.clone()));
                for message in batch.answered {
                    refuse(message, &on_message, &address, &reason);
                }
                break;
            }
        }
        drop(peers);
        tokio::time::sleep(backoff).await;
    }
}

/// At most this many messages go out in one write…
const MAX_BATCH: usize = 64;
/// …and at most about this many bytes (one message may be larger on its own).
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// What the link's task sends in one write: the first message waiting and, when more
/// wait behind it, those too, back to back in one multipart message (the receiver
/// reads them one by one; see the crate docs). One write and one wake-up of the
/// receiver then carry many messages, which is what lets a busy link keep up.
struct Batch {
    /// The multipart message; `None` when every message taken had expired.
    message: Option<ZmqMessage>,
    /// How many messages were taken off the queue.
    taken: usize,
    /// How many of those were casts or fanouts past their deadline, not sent.
    expired: usize,
    /// Copies of the messages whose senders wait for an answer, to refuse them if
    /// the write fails.
    answered: Vec<ZmqMessage>,
}

impl Batch {
    fn gather(first: Outgoing, rx: &mut mpsc::Receiver<Outgoing>) -> Batch {
        // Only plain five-frame messages can be read back to back: those behind
        // routing frames (on the link to the proxy, which sends no other kind) go alone.
        let batching = first.message.len() == 5;
        let mut batch = Batch {
            message: None,
            taken: 0,
            expired: 0,
            answered: Vec::new(),
        };
        let now = Instant::now();
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(out) = next {
            batch.taken += 1;
            if out.deadline <= now {
                batch.expired +=
                    usize::from(kind_of(&out.message).is_some_and(Kind::is_counted_until_taken));
            } else {
                if answer_expected(&out.message) {
                    batch.answered.push(out.message.clone());
                }
                bytes += out.message.iter().map(Bytes::len).sum::<usize>();
                match &mut batch.message {
                    None => batch.message = Some(out.message),
                    Some(message) => {
                        for frame in out.message.into_vec() {
                            message.push_back(frame);
                        }
                    }
                }
            }
            next = if batching && batch.taken < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        batch
    }
}

/// Whether the receiver of `message` answers it (calls, confirmed casts,
/// notifications): a failed send must then be answered as refused, so its sender
/// need not wait out its timeout.
fn answer_expected(message: &ZmqMessage) -> bool {
    kind_of(message)
        .is_some_and(|kind| matches!(kind, Kind::Call | Kind::ConfirmedCast | Kind::Notify))
}

/// The kind of a message about to be sent.
fn kind_of(message: &ZmqMessage) -> Option<Kind> {
    // The fourth frame from the end, behind any routing frames.
    message
        .len()
        .checked_sub(4)
        .and_then(|i| message.get(i))
        .and_then(|kind| kind.first().copied())
        .and_then(Kind::from_byte)
}

/// How many casts a [`Kind::Taken`] that came back says were taken; `None` for
/// any other message.
fn taken(frames: &[Bytes]) -> Option<usize> {
    match frames {
        [_, kind, _, _, body] if kind.as_ref() == [Kind::Taken.byte()] => {
            std::str::from_utf8(body).ok().and_then(|n| n.parse().ok())
        }
        _ => None,
    }
}

/// How many messages were waiting when a link refused them.
struct Refused {
    all: usize,
    /// Casts and fanouts among them.
    casts: usize,
}

/// While the peer cannot be reached: answers everything waiting as refused, so its
/// senders go to another node at once rather than wait out their timeouts.
fn refuse_waiting(
    rx: &mut mpsc::Receiver<Outgoing>,
    on_message: &OnMessage,
    address: &str,
    reason: &str,
    queued: &Depth,
) -> Refused {
    let mut refused = Refused { all: 0, casts: 0 };
    while let Ok(out) = rx.try_recv() {
        refused.all += 1;
        refused.casts +=
            usize::from(kind_of(&out.message).is_some_and(Kind::is_counted_until_taken));
        queued.sub(1);
        refuse(out.message, on_message, address, reason);
    }
    refused
}

/// Hands `on_message` a refusal of `message` (behind the same routing frames, which
/// then read as the sender's), when its sender waits for an answer.
fn refuse(message: ZmqMessage, on_message: &OnMessage, address: &str, reason: &str) {
    let mut frames = message.into_vec();
    let Some(routing) = frames.len().checked_sub(5) else {
        return;
    };
    let five = frames.split_off(routing);
    match Frame::parse(five) {
        Ok(frame) if matches!(frame.kind, Kind::Call | Kind::ConfirmedCast | Kind::Notify) => {
            let refusal = Frame::answer(
                Kind::Refused,
                frame.id,
                format!("ZeroMQ peer {address} unreachable: {reason}"),
            );
            frames.extend(refusal.into_message([]).into_vec());
            // An answer, handled at once: nothing to wait for.
            if let Some(pending) = on_message(frames) {
                tokio::spawn(pending);
            }
        }
        Ok(frame) => {
            tracing::debug!(%address, kind = ?frame.kind, destination = frame.destination_str(), "message to an unreachable peer dropped");
        }
        Err(_) => {}
    }
}
