//! The optional proxy (`messaging-zmq-proxy`): nodes that cannot reach each other
//! directly (NAT, firewalls, too many connections) talk through one relay instead.
//!
//! The proxy binds two sockets:
//!
//! | socket | address | nodes connect |
//! |---|---|---|
//! | ROUTER | the *router* address | one DEALER each, its ZeroMQ identity set to the node id (`n` + a UUID) |
//! | PUB | the *publisher* address | one SUB each, subscribed to the exact destination texts it serves |
//!
//! Every message is the five frames of [`frame`](crate::frame) (`[version, kind, id,
//! destination, body]`) behind routing frames:
//!
//! | step | frames |
//! |---|---|
//! | a node sends on its DEALER | `[to, …5 frames]` |
//! | the proxy ROUTER receives | `[from, to, …5 frames]` |
//! | the proxy ROUTER sends | `[to, from, …5 frames]` |
//! | the receiving node's DEALER reads | `[from, …5 frames]`, and answers with `to` = `from` |
//!
//! - **Unknown destination.** When no node `to` is connected, the proxy answers a
//!   message that is not itself an answer with a [`Kind::Refused`] on the sender's
//!   DEALER: `[to, version, 'X', <the message id>, "", "no node <to> at the proxy"]`,
//!   so the sender tries another node at once rather than waiting out its timeout.
//!   Answers (replies, acks, refusals) to unknown nodes are dropped: their sender has
//!   nobody to tell.
//! - **Publish (fanout).** A node sends `[“”, …5 frames]` (an empty `to`) with kind
//!   [`Kind::Fanout`] and a non-empty destination; the proxy publishes `[destination,
//!   from, …5 frames]` on PUB. ZeroMQ subscriptions match prefixes, so a receiver
//!   compares the first frame with its destinations for equality.
//! - **Malformed input** (a bad version, kind or destination, a wrong frame count, a
//!   publish of another kind) is logged at warn level with the sender's id and the
//!   reason (never the body), counted, and dropped; the proxy goes on.
//! - **Slow peers.** Each destination has a queue (1 024 messages) and a task of
//!   its own, so a peer that does not read holds up only the messages to it.
//!   When a destination's queue is full the relay waits for room (senders slow down,
//!   as with a broker), but for one second at most: then it drops messages to that
//!   peer at once (a warn names the peer, [`ProxyStats::dropped`] counts them, their
//!   senders time out) until the peer reads again. PUB never waits: ZeroMQ drops
//!   messages for a subscriber that falls behind.
//!
//! ```
//! # #[tokio::main] async fn main() -> messaging_core::Result<()> {
//! use driver_zmq::proxy::Proxy;
//!
//! let proxy = Proxy::bind("127.0.0.1:0", "127.0.0.1:0").await?;
//! println!("router {} publisher {}", proxy.router_address(), proxy.publisher_address());
//! proxy.shutdown().await;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use tokio::sync::mpsc::error::{SendTimeoutError, TrySendError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use zeromq::{
    Endpoint, PubSocket, RouterRecvHalf, RouterSendHalf, RouterSocket, Socket, SocketRecv,
    SocketSend, ZmqMessage,
};

use messaging_core::{Error, Result};

use crate::frame::{Frame, Kind};

/// How many messages may wait in the proxy for one destination (beyond the 100 000 of
/// zeromq's own queue per peer) before the relay waits for room.
const QUEUE_CAPACITY: usize = 1024;

/// How long a destination's task lives without messages (it is started again on the
/// next one), so that nodes that come and go do not leave tasks behind.
const IDLE: Duration = Duration::from_secs(60);

/// How long the relay waits for room in a destination's full queue before it counts
/// the destination as stalled and drops messages to it.
const STALL: Duration = Duration::from_secs(1);

/// How long a refusal may wait for room in its sender's queue: the sender is the one
/// that is slow, so it loses its refusal rather than stalling the refusing task.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest pause between two tries of a send to a peer whose queue is full.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// How often the counters are logged (at debug level, when they changed).
const STATS_EVERY: Duration = Duration::from_secs(30);

/// What the proxy has done since it was bound.
///
/// ```
/// # #[tokio::main] async fn main() -> messaging_core::Result<()> {
/// use driver_zmq::proxy::{Proxy, ProxyStats};
///
/// let proxy = Proxy::bind("127.0.0.1:0", "127.0.0.1:0").await?;
/// assert_eq!(proxy.stats(), ProxyStats::default());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Messages handed to the ROUTER connection of their destination.
    pub forwarded: u64,
    /// Fanout messages published on PUB (whether or not anybody subscribed).
    pub published: u64,
    /// Messages to unknown nodes answered with a refusal.
    pub refused: u64,
    /// Messages dropped because they were not of this protocol.
    pub malformed: u64,
    /// Well-formed messages given up on: the destination's queue was full, an answer
    /// had no node to go to, or a refusal could not reach its sender.
    pub dropped: u64,
}

/// The counters behind [`ProxyStats`], shared with the proxy's tasks.
#[derive(Default)]
struct Counters {
    forwarded: AtomicU64,
    published: AtomicU64,
    refused: AtomicU64,
    malformed: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> ProxyStats {
        ProxyStats {
            forwarded: self.forwarded.load(Ordering::Relaxed),
            published: self.published.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// A running proxy: a ROUTER that relays messages between nodes and a PUB that
/// publishes their fanout messages. It runs on tokio until [`Proxy::shutdown`] is
/// called or it is dropped.
///
/// ```
/// # #[tokio::main] async fn main() -> messaging_core::Result<()> {
/// use driver_zmq::proxy::Proxy;
///
/// let proxy = Proxy::bind("127.0.0.1:0", "127.0.0.1:0").await?;
/// // Nodes connect a DEALER to proxy.router_address() and a SUB to
/// // proxy.publisher_address().
/// assert_eq!(proxy.stats().forwarded, 0);
/// proxy.shutdown().await;
/// # Ok(()) }
/// ```
pub struct Proxy {
    router_address: String,
    publisher_address: String,
    counters: Arc<Counters>,
    /// Dropping it (with the proxy) stops the relay task.
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("router_address", &self.router_address)
            .field("publisher_address", &self.publisher_address)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Proxy {
    /// Binds the router and publisher (`host:port`, optionally `tcp://host:port`;
    /// port 0 picks a free one; host `*` or `0.0.0.0` binds every interface) and
    /// starts relaying on the current tokio runtime.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> messaging_core::Result<()> {
    /// use driver_zmq::proxy::Proxy;
    ///
    /// let proxy = Proxy::bind("127.0.0.1:0", "tcp://127.0.0.1:0").await?;
    /// assert!(proxy.router_address().starts_with("127.0.0.1:"));
    /// assert!(Proxy::bind("ipc:///tmp/x", "127.0.0.1:0").await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn bind(router: &str, publisher: &str) -> Result<Proxy> {
        let router_bind = BindAddress::parse(router)?;
        let publisher_bind = BindAddress::parse(publisher)?;

        let mut router_socket = RouterSocket::new();
        let router_port = router_bind.bind(&mut router_socket, "router").await?;
        let mut pub_socket = PubSocket::new();
        let publisher_port = publisher_bind.bind(&mut pub_socket, "publisher").await?;

        let counters = Arc::new(Counters::default());
        let (stop, stopped) = oneshot::channel();
        let (router_tx, router_rx) = router_socket.split();
        let relay = Relay {
            router_tx,
            publisher: pub_socket,
            counters: counters.clone(),
            routes: HashMap::new(),
            workers: JoinSet::new(),
        };
        let task = tokio::spawn(relay.run(router_rx, stopped));

        let proxy = Proxy {
            router_address: router_bind.reported(router_port),
            publisher_address: publisher_bind.reported(publisher_port),
            counters,
            stop,
            task,
        };
        tracing::info!(
            router = %proxy.router_address,
            publisher = %proxy.publisher_address,
            "ZeroMQ proxy listening"
        );
        Ok(proxy)
    }

    /// The router's address as `host:port`: the host as given to [`Proxy::bind`], the
    /// port as bound. Nodes connect their DEALER here.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> messaging_core::Result<()> {
    /// use driver_zmq::proxy::Proxy;
    ///
    /// let proxy = Proxy::bind("127.0.0.1:0", "127.0.0.1:0").await?;
    /// let (host, port) = proxy.router_address().rsplit_once(':').unwrap();
    /// assert_eq!(host, "127.0.0.1");
    /// assert_ne!(port, "0");
    /// # Ok(()) }
    /// ```
    pub fn router_address(&self) -> &str {
        &self.router_address
    }

    /// The publisher's address as `host:port`, like [`Proxy::router_address`]. Nodes
    /// connect their SUB here.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> messaging_core::Result<()> {
    /// use driver_zmq::proxy::Proxy;
    ///
    /// let proxy = Proxy::bind("127.0.0.1:0", "127.0.0.1:0").await?;
    /// assert_ne!(proxy.publisher_address(), proxy.router_address());
    /// # Ok(()) }
    /// ```
    pub fn publisher_address(&self) -> &str {
        &self.publisher_address
    }

    /// What the proxy has done so far.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> messaging_core::Result<()> {
    /// use driver_zmq::proxy::Proxy;
    ///
    /// let proxy = Proxy::bind("127.0.0.1:0", "127.0.0.1:0").await?;
    /// let stats = proxy.stats();
    /// assert_eq!((stats.forwarded, stats.malformed), (0, 0));
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> ProxyStats {
        self.counters.snapshot()
    }

    /// Stops relaying and waits until the relay and its per-destination tasks have
    /// ended. Dropping the proxy stops it too, without waiting.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> messaging_core::Result<()> {
    /// use driver_zmq::proxy::Proxy;
    ///
    /// let proxy = Proxy::bind("127.0.0.1:0", "127.0.0.1:0").await?;
    /// proxy.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub async fn shutdown(self) {
        let Proxy { stop, task, .. } = self;
        drop(stop);
        if let Err(e) = task.await {
            tracing::error!(error = %e, "the ZeroMQ proxy task failed");
        }
    }
}

/// A bind address as the user gave it.
struct BindAddress {
    /// The host as given (IPv6 in brackets), for the reported address.
    host: String,
    /// The host to bind (`*` means every IPv4 interface, as in libzmq).
    bind_host: String,
    port: u16,
}

impl BindAddress {
    fn parse(given: &str) -> Result<BindAddress> {
        let bad =
            |why: &str| {
                Error::Config(format!(
                "invalid proxy address {given:?}: {why} (expected host:port, e.g. 0.0.0.0:5700)"
            ).into())
            };
        let rest = match given.split_once("://") {
            Some(("tcp", rest)) => rest,
            Some((scheme, _)) => return Err(bad(&format!("transport {scheme} not supported"))),
            None => given,
        };
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let port: u16 = port.parse().map_err(|_| bad("the port is not a number"))?;
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let host = if bare.contains(':') {
            // An IPv6 address: brackets keep the reported `host:port` unambiguous.
            format!("[{bare}]")
        } else {
            host.to_string()
        };
        let bind_host = if host == "*" {
            "0.0.0.0".to_string()
        } else {
            host.clone()
        };
        Ok(BindAddress {
            host,
            bind_host,
            port,
        })
    }

    /// Binds `socket` here and returns the bound port.
    async fn bind(&self, socket: &mut impl Socket, role: &str) -> Result<u16> {
        let endpoint = format!("tcp://{}:{}", self.bind_host, self.port);
        let bound = socket.bind(&endpoint).await.map_err(|e| {
            let message = format!("cannot bind the proxy {role} on {endpoint}: {e}");
            Error::transport(messaging_core::ErrorKind::Io, message, e)
        })?;
        match bound {
            Endpoint::Tcp(_, port) => Ok(port),
            other => Err(Error::Transport(
                format!("the proxy {role} bound {other}, not a TCP address").into(),
            )),
        }
    }

    fn reported(&self, port: u16) -> String {
        format!("{}:{port}", self.host)
    }
}

/// An id or destination for a log line: printable ASCII as is, other bytes escaped
/// (identities may be random bytes, and a log line must stay one line).
fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// A message on its way to one node.
struct Outgoing {
    /// The sender's identity (where a refusal goes).
    from: Bytes,
    kind: Kind,
    id: Bytes,
    /// `[to, from, …5 frames]`, ready for the ROUTER.
    message: ZmqMessage,
}

/// One destination's queue; its task forwards what is queued.
struct Route {
    tx: mpsc::Sender<Outgoing>,
    /// Whether the queue stayed full for [`STALL`]: then messages to it are dropped at
    /// once (not waited on) until it takes one again, so that a stuck peer costs the
    /// others one wait, and one warn, per episode rather than per message.
    stalled: bool,
}

/// The relay task's state.
struct Relay {
    router_tx: RouterSendHalf,
    publisher: PubSocket,
    counters: Arc<Counters>,
    routes: HashMap<Bytes, Route>,
    /// The per-destination tasks; dropped (aborted) with the relay.
    workers: JoinSet<()>,
}

impl Relay {
    async fn run(mut self, mut router_rx: RouterRecvHalf, mut stopped: oneshot::Receiver<()>) {
        let mut tick = tokio::time::interval(STATS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut logged = ProxyStats::default();
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                Some(done) = self.workers.join_next(), if !self.workers.is_empty() => {
                    if let Err(e) = done
                        && e.is_panic()
                    {
                        tracing::error!(error = %e, "a ZeroMQ proxy destination task panicked");
                    }
                }
                _ = tick.tick() => {
                    // Tasks that ended (idle, or their node is gone) leave closed queues.
                    self.routes.retain(|_, route| !route.tx.is_closed());
                    let stats = self.counters.snapshot();
                    if stats != logged {
                        tracing::debug!(
                            forwarded = stats.forwarded,
                            published = stats.published,
                            refused = stats.refused,
                            malformed = stats.malformed,
                            dropped = stats.dropped,
                            destinations = self.routes.len(),
                            "ZeroMQ proxy counters"
                        );
                        logged = stats;
                    }
                }
                received = router_rx.recv() => match received {
                    Ok(message) => self.handle(message.into_vec()).await,
                    Err(e) => {
                        // Not expected from a ROUTER; pause so that a persistent error
                        // cannot spin.
                        tracing::warn!(error = %e, "the ZeroMQ proxy router failed to receive");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        // Wait for the destination tasks, so that shutdown leaves nothing running.
        self.workers.shutdown().await;
        let _ = self.publisher.close().await;
        tracing::info!("ZeroMQ proxy stopped");
    }

    /// Relays one message received on the ROUTER: `[from, to, …5 frames]`.
    async fn handle(&mut self, mut frames: Vec<Bytes>) {
        let counters = &self.counters;
        // The ROUTER always puts the sender's identity first.
        let from = if frames.is_empty() {
            Bytes::new()
        } else {
            frames.remove(0)
        };
        let malformed = |reason: &str| {
            tracing::warn!(sender = %show(&from), reason, "dropping a malformed message");
            Counters::add(&counters.malformed);
        };
        if frames.is_empty() {
            return malformed("no destination frame");
        }
        let to = frames.remove(0);
        let frame = match Frame::parse(frames) {
            Ok(frame) => frame,
            Err(e) => return malformed(&format!("after the destination frame: {e}")),
        };
        if to.is_empty() {
            if frame.kind != Kind::Fanout {
                return malformed(&format!(
                    "a publish of kind {:?} (only fanout messages are published)",
                    frame.kind
                ));
            }
            if frame.destination.is_empty() {
                return malformed("a publish without a destination");
            }
            return self.publish(from, frame).await;
        }
        let (kind, id) = (frame.kind, frame.id.clone());
        let message = frame.into_message([to.clone(), from.clone()]);
        self.forward(
            to,
            Outgoing {
                from,
                kind,
                id,
                message,
            },
        )
        .await;
    }

    async fn publish(&mut self, from: Bytes, frame: Frame) {
        let counters = &self.counters;
        let topic = frame.destination.clone();
        let message = frame.into_message([topic.clone(), from.clone()]);
        // PUB never waits: it drops for subscribers that fall behind.
        match self.publisher.send(message).await {
            Ok(()) => Counters::add(&counters.published),
            Err(e) => {
                tracing::warn!(
                    sender = %show(&from),
                    destination = %show(&topic),
                    error = %e,
                    "could not publish a fanout message"
                );
                Counters::add(&counters.dropped);
            }
        }
    }

    /// Queues `out` for `to`'s task, starting one if needed. A full queue is waited on
    /// (which slows every sender down to the pace of the busiest destination, as a
    /// broker would) but for [`STALL`] at most: then the destination counts as stalled,
    /// and messages to it are dropped without waiting until its queue has room again.
    async fn forward(&mut self, to: Bytes, out: Outgoing) {
        let mut out = out;
        // Twice at most: a queue found closed is replaced by a fresh one, which is not.
        for _ in 0..2 {
            let route = match self.routes.entry(to.clone()) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => {
                    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
                    self.workers.spawn(deliver(
                        to.clone(),
                        rx,
                        self.router_tx.clone(),
                        self.counters.clone(),
                    ));
                    entry.insert(Route { tx, stalled: false })
                }
            };
            let closed = match route.tx.try_send(out) {
                Ok(()) => {
                    route.stalled = false;
                    return;
                }
                Err(TrySendError::Full(_)) if route.stalled => {
                    Counters::add(&self.counters.dropped);
                    return;
                }
                Err(TrySendError::Full(full)) => match route.tx.send_timeout(full, STALL).await {
                    Ok(()) => return,
                    Err(SendTimeoutError::Timeout(_)) => {
                        tracing::warn!(
                            peer = %show(&to),
                            capacity = QUEUE_CAPACITY,
                            "a peer does not take its messages: dropping messages to it until it does"
                        );
                        route.stalled = true;
                        Counters::add(&self.counters.dropped);
                        return;
                    }
                    Err(SendTimeoutError::Closed(closed)) => closed,
                },
                Err(TrySendError::Closed(closed)) => closed,
            };
            // The task ended (idle, or its node went away): a fresh one takes over.
            self.routes.remove(&to);
            out = closed;
        }
        Counters::add(&self.counters.dropped);
    }
}

/// One destination's task: sends what is queued for `to`, in order. It ends after
/// [`IDLE`] without messages or once `to` is not connected, and then still delivers
/// (or refuses) what was queued before its queue closed.
async fn deliver(
    to: Bytes,
    mut rx: mpsc::Receiver<Outgoing>,
    mut router: RouterSendHalf,
    counters: Arc<Counters>,
) {
    loop {
        match tokio::time::timeout(IDLE, rx.recv()).await {
            Ok(Some(out)) => {
                if !send_one(&to, out, &mut router, &counters).await {
                    break;
                }
            }
            // The relay stopped.
            Ok(None) => return,
            Err(_idle) => break,
        }
    }
    rx.close();
    while let Some(out) = rx.recv().await {
        send_one(&to, out, &mut router, &counters).await;
    }
}

/// Sends one message to `to`; refuses it when `to` is not connected. Returns whether
/// `to` was connected.
async fn send_one(to: &Bytes, out: Outgoing, router: &mut RouterSendHalf, c: &Counters) -> bool {
    match send_when_room(router, out.message, None).await {
        Ok(()) => {
            Counters::add(&c.forwarded);
            return true;
        }
        // Without a patience, the only failure is a peer that is not connected.
        Err(Unsent::NotConnected | Unsent::NoRoom) => {}
    }
    if out.kind.is_answer() {
        tracing::debug!(
            sender = %show(&out.from),
            peer = %show(to),
            kind = ?out.kind,
            "dropping an answer to a node that is not connected"
        );
        Counters::add(&c.dropped);
        return false;
    }
    let refusal = Frame::answer(
        Kind::Refused,
        out.id,
        format!("no node {} at the proxy", show(to)),
    )
    .into_message([out.from.clone(), to.clone()]);
    match send_when_room(router, refusal, Some(REFUSAL_TIMEOUT)).await {
        Ok(()) => {
            tracing::debug!(sender = %show(&out.from), peer = %show(to), "refused a message to an unknown node");
            Counters::add(&c.refused);
        }
        Err(Unsent::NotConnected) => {
            tracing::debug!(sender = %show(&out.from), peer = %show(to), "neither sender nor destination is connected");
            Counters::add(&c.dropped);
        }
        Err(Unsent::NoRoom) => {
            tracing::warn!(sender = %show(&out.from), peer = %show(to), "dropping a refusal: the sender does not read");
            Counters::add(&c.dropped);
        }
    }
    false
}

/// Why [`send_when_room`] did not send.
enum Unsent {
    /// The ROUTER has no peer of that identity (or lost it while sending).
    NotConnected,
    /// The peer's queue stayed full for the whole patience.
    NoRoom,
}

/// Sends `message` (`[to, …]`) on the ROUTER once the peer's queue has room, giving up
/// after `patience` if one is given.
///
/// zeromq 0.7 keeps its peer table locked while a send waits for room in a peer's
/// queue, which would hold up sends to every other peer behind one that does not read.
/// So a send is only ever polled once: if it cannot finish at once, it is dropped
/// (nothing was queued; the lock is released) and tried again a little later.
async fn send_when_room(
    router: &mut RouterSendHalf,
    message: ZmqMessage,
    patience: Option<Duration>,
) -> std::result::Result<(), Unsent> {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        // A clone is a handful of reference counts: the frames are shared.
        match router.send(message.clone()).now_or_never() {
            Some(Ok(())) => return Ok(()),
            Some(Err(_)) => return Err(Unsent::NotConnected),
            None => {}
        }
        if patience.is_some_and(|patience| started.elapsed() >= patience) {
            return Err(Unsent::NoRoom);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_RETRY_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_host_and_port_with_an_optional_tcp_prefix() {
        let a = BindAddress::parse("0.0.0.0:5700").unwrap();
        assert_eq!((a.bind_host.as_str(), a.port), ("0.0.0.0", 5700));
        assert_eq!(a.reported(5700), "0.0.0.0:5700");

        let a = BindAddress::parse("tcp://*:0").unwrap();
        assert_eq!(a.bind_host, "0.0.0.0");
        assert_eq!(a.reported(4242), "*:4242");

        let a = BindAddress::parse("::1:0").unwrap();
        assert_eq!(a.reported(7), "[::1]:7");
        let a = BindAddress::parse("[::1]:0").unwrap();
        assert_eq!(a.bind_host, "[::1]");

        for bad in ["5700", ":5700", "host:port", "ipc:///tmp/p", "h:70000"] {
            assert!(BindAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn every_interface_reports_the_host_as_given() {
        let proxy = Proxy::bind("*:0", "0.0.0.0:0").await.unwrap();
        let (host, port) = proxy.router_address().rsplit_once(':').unwrap();
        assert_eq!(host, "*");
        assert_ne!(port.parse::<u16>().unwrap(), 0);
        assert!(proxy.publisher_address().starts_with("0.0.0.0:"));
        proxy.shutdown().await;
    }
}
