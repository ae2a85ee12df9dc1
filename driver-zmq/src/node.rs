//! [`Node`]: one transport's presence on the network: the ROUTER its servers and
//! listeners receive on (or its connection to the proxy), its outgoing links, its
//! registrations with the matchmaker and what it has looked up lately.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use messaging_core::{Error, Result};
use rand::Rng;
use tokio::sync::{OnceCell, mpsc, oneshot};
use tokio::time::Instant;
use zeromq::{RouterSocket, Socket, SocketOptions, SocketRecv, SubSocket};

use crate::answers::Answers;
use crate::destination::{Destination, Member};
use crate::frame::{Frame, Kind};
use crate::link::{Link, OnMessage, Pending};
use crate::matchmaker::Matchmaker;
use crate::options::ZmqOptions;
use crate::reply_path::ReplyPath;
use crate::routes::{Delivered, Routes};
use crate::telemetry;

/// How long a lookup's answer is reused. A node that stopped serving a destination
/// refuses what still reaches it, and the sender then looks again at once.
const LOOKUP_CACHE: Duration = Duration::from_secs(1);
/// The longest pause between lookups while nobody is found.
const MAX_LOOKUP_PAUSE: Duration = Duration::from_millis(500);
/// A link to a peer that has been unreachable this long, with nothing to send, is
/// dropped (a restarted server comes back on another port).
const FORGET_UNREACHABLE_PEER: Duration = Duration::from_secs(60);
/// Registration renewals after a matchmaker failure come this soon.
const RENEW_AFTER_FAILURE: Duration = Duration::from_secs(10);

/// What a lookup found, shared with the cache (no copy per message).
pub type Members = Arc<[Member]>;

/// One transport's presence on the network.
pub struct Node {
    /// The transport's options.
    pub options: Arc<ZmqOptions>,
    /// The name service.
    pub matchmaker: Arc<dyn Matchmaker>,
    /// Sends waiting for answers.
    pub answers: Arc<Answers>,
    /// This node's servers and listeners.
    pub routes: Arc<Routes>,
    id: String,
    peers: Mutex<HashMap<String, Arc<Link>>>,
    proxy: OnceCell<ProxyConnection>,
    inbound: OnceCell<Member>,
    cache: Mutex<HashMap<Destination, (Members, Instant)>>,
    registrations: Mutex<HashMap<(Destination, Member), usize>>,
    /// Held while writing to the matchmaker, so a removal and a new registration of
    /// the same member land in the order they were decided.
    matchmaking: tokio::sync::Mutex<()>,
    renewing: std::sync::atomic::AtomicBool,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

/// This node's connection to the proxy.
struct ProxyConnection {
    link: Arc<Link>,
    subscriber: Option<mpsc::UnboundedSender<Subscribe>>,
}

/// A request to the SUB task: subscribe to a destination and say when the proxy has
/// the subscription.
struct Subscribe {
    destination: String,
    done: oneshot::Sender<()>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("address", &self.inbound.get())
            .finish_non_exhaustive()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.abort_tasks();
    }
}

/// Routes one message that reached this node. When the server or listener it is for
/// has no room, returns what waits for that room: the caller awaits it before reading
/// on (see [`routes`](crate::routes) on back-pressure).
fn handle_incoming(
    routes: &Routes,
    answers: &Answers,
    frame: Frame,
    path: &ReplyPath,
) -> Option<Pending> {
    let delivered = match frame.kind {
        kind if kind.is_answer() => {
            answers.handle(frame);
            return None;
        }
        Kind::Notify => routes.deliver_notification(frame),
        _ => routes.deliver_request(frame, path),
    };
    match delivered {
        Delivered::Done(answer) => {
            send_answer(answer, path);
            None
        }
        Delivered::Waiting(waiting) => {
            let path = path.clone();
            Some(Box::pin(async move {
                send_answer(waiting.await, &path);
            }))
        }
    }
}

/// Sends `answer` (if any) back on `path`: at once when there is room, else from a
/// task of its own, as a caller that stopped reading must not hold up this node's
/// reading.
fn send_answer(answer: Option<Frame>, path: &ReplyPath) {
    let Some(answer) = answer else {
        return;
    };
    // Straight into the ROUTER when it has room; a ROUTER send that is pending has
    // sent nothing, so the copy goes in the background. (A send on a link is not
    // tried here: dropped half-way, it would leave the link's count of queued
    // messages behind.)
    let first = match path {
        ReplyPath::Router { .. } => futures::FutureExt::now_or_never(path.answer(answer.clone())),
        _ => None,
    };
    match first {
        Some(Ok(())) => {}
        Some(Err(e)) => tracing::debug!(error = %e, "answer not sent"),
        None => {
            let path = path.clone();
            tokio::spawn(async move {
                if let Err(e) = path.answer(answer).await {
                    tracing::debug!(error = %e, "answer not sent");
                }
            });
        }
    }
}

fn malformed(from: &str, error: &dyn std::fmt::Display) {
    tracing::warn!(from, %error, "malformed ZeroMQ message dropped");
}

impl Node {
    /// A node; nothing is bound or connected until first needed.
    pub fn new(options: Arc<ZmqOptions>) -> Result<Arc<Node>> {
        let matchmaker = options.open_matchmaker()?;
        Ok(Arc::new(Node {
            options,
            matchmaker,
            answers: Arc::default(),
            routes: Arc::default(),
            id: format!("n{}", uuid::Uuid::new_v4().simple()),
            peers: Mutex::default(),
            proxy: OnceCell::new(),
            inbound: OnceCell::new(),
            cache: Mutex::default(),
            registrations: Mutex::default(),
            matchmaking: tokio::sync::Mutex::new(()),
            renewing: Default::default(),
            tasks: Mutex::default(),
        }))
    }

    fn abort_tasks(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            task.abort();
        }
    }

    fn keep(&self, task: tokio::task::AbortHandle) {
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
    }

    fn behind_proxy(&self) -> bool {
        self.options.zmq.use_router_proxy
    }

    /// Where other nodes reach this one, binding (or connecting to the proxy) first.
    pub async fn address(self: &Arc<Self>) -> Result<&Member> {
        self.inbound
            .get_or_try_init(|| async {
                if self.behind_proxy() {
                    self.proxy().await?;
                    Ok(Member::node(format!("@{}", self.id)))
                } else {
                    self.bind().await
                }
            })
            .await
    }

    /// Binds the ROUTER on a port of the configured range and starts receiving.
    async fn bind(&self) -> Result<Member> {
        let host = self.options.bind_host().to_string();
        let (lo, hi) = self.options.port_range();
        let tries = if lo == hi {
            1
        } else {
            self.options.zmq.rpc_zmq_bind_port_retries.max(1)
        };
        let mut last_error = String::new();
        for _ in 0..tries {
            let port = rand::rng().random_range(lo..=hi);
            let mut options = SocketOptions::default();
            // Larger reads from the start: a busy node reads batches of messages.
            options.read_buffer(16 * 1024, 256 * 1024, 4);
            let mut router = RouterSocket::with_options(options);
            // Made before binding: every caller that connects is seen.
            let events = router.monitor();
            match router.bind(&format!("tcp://{host}:{port}")).await {
                Ok(endpoint) => {
                    let port = match endpoint {
                        zeromq::Endpoint::Tcp(_, bound) => bound,
                        _ => port,
                    };
                    let address = format!("{}:{port}", self.options.zmq.rpc_zmq_host);
                    tracing::info!(%address, bind = %format!("{host}:{port}"), "ZeroMQ node listening");
                    let (send, mut recv) = router.split();
                    let (routes, answers) = (self.routes.clone(), self.answers.clone());
                    let task = tokio::spawn(async move {
                        while let Ok(message) = recv.recv().await {
                            let mut frames = message.into_vec();
                            if frames.is_empty() {
                                continue;
                            }
                            let identity = frames.remove(0);
                            let messages = match Frame::parse_batch(frames) {
                                Ok(messages) => messages,
                                Err(e) => {
                                    malformed(&String::from_utf8_lossy(&identity), &e);
                                    continue;
                                }
                            };
                            // One for the whole batch: the messages of a multipart
                            // message all came from one sender.
                            let path = ReplyPath::Router {
                                send: send.clone(),
                                identity,
                            };
                            // Casts and fanouts taken, to tell their sender (see `link`).
                            let mut taken = 0usize;
                            for message in messages {
                                match message {
                                    // Answers come back on outgoing links, never here.
                                    Ok(frame) if frame.kind.is_answer() => tracing::debug!(
                                        kind = ?frame.kind,
                                        "answer on the ROUTER dropped"
                                    ),
                                    Ok(frame) => {
                                        taken += usize::from(frame.kind.is_counted_until_taken());
                                        if let Some(waiting) =
                                            handle_incoming(&routes, &answers, frame, &path)
                                        {
                                            waiting.await;
                                        }
                                    }
                                    Err(e) => malformed(&path.sender(), &e),
                                }
                            }
                            if taken > 0 {
                                let answer =
                                    Frame::answer(Kind::Taken, Bytes::new(), taken.to_string());
                                send_answer(Some(answer), &path);
                            }
                        }
                    });
                    self.keep(task.abort_handle());
                    // The callers connected to this node, counted until it closes.
                    let peers = tokio::spawn(telemetry::count_peers(events));
                    self.keep(peers.abort_handle());
                    return Ok(Member::node(address));
                }
                Err(e) => last_error = format!("{host}:{port}: {e}"),
            }
        }
        Err(Error::Transport(
            format!(
                "no free port in rpc_zmq_min_port..rpc_zmq_max_port ({lo}..{hi}) after {tries} \
             tries; last: {last_error}"
            )
            .into(),
        ))
    }

    /// The connection to the proxy, made on first use.
    async fn proxy(&self) -> Result<&ProxyConnection> {
        self.proxy
            .get_or_try_init(|| async {
                let zmq = &self.options.zmq;
                let link_slot: Arc<OnceLock<Weak<Link>>> = Arc::default();
                let (routes, answers) = (self.routes.clone(), self.answers.clone());
                let slot = link_slot.clone();
                let timeout = self.options.send_timeout();
                let on_message: OnMessage = Arc::new(move |mut frames: Vec<Bytes>| {
                    if frames.is_empty() {
                        return None;
                    }
                    let from = frames.remove(0);
                    let frame = match Frame::parse(frames) {
                        Ok(f) => f,
                        Err(e) => {
                            malformed(&String::from_utf8_lossy(&from), &e);
                            return None;
                        }
                    };
                    let link = slot.get().and_then(Weak::upgrade)?;
                    handle_incoming(
                        &routes,
                        &answers,
                        frame,
                        &ReplyPath::Proxy {
                            link,
                            from,
                            timeout,
                        },
                    )
                });
                let link = Arc::new(Link::start(
                    &zmq.zmq_proxy_router,
                    Some(Bytes::from(self.id.clone())),
                    zmq.zmq_send_queue,
                    on_message,
                    None,
                ));
                let _ = link_slot.set(Arc::downgrade(&link));
                let subscriber = if zmq.zmq_proxy_publisher.is_empty() {
                    None
                } else {
                    Some(self.subscribe_to_publisher(&zmq.zmq_proxy_publisher, link.clone()))
                };
                Ok::<_, Error>(ProxyConnection { link, subscriber })
            })
            .await
    }

    /// Starts the SUB task reading fanouts from the proxy's PUB.
    fn subscribe_to_publisher(
        &self,
        publisher: &str,
        link: Arc<Link>,
    ) -> mpsc::UnboundedSender<Subscribe> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Subscribe>();
        let endpoint = format!("tcp://{publisher}");
        let probe = format!("probe/{}", self.id);
        let routes = self.routes.clone();
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(50);
            let mut sub = loop {
                let mut options = SocketOptions::default();
                options.connect_timeout(Duration::from_secs(2));
                let mut sub = SubSocket::with_options(options);
                match sub.connect(&endpoint).await {
                    Ok(()) => break sub,
                    Err(e) => {
                        tracing::warn!(%endpoint, error = %e, retry_in = ?backoff, "cannot reach the proxy's publisher; fanout through it waits");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            };
            if let Err(e) = sub.subscribe(&probe).await {
                tracing::warn!(%endpoint, error = %e, "cannot subscribe to this node's probe; fanout subscriptions will not be confirmed");
            }
            let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
            let mut ticker = tokio::time::interval(Duration::from_millis(20));
            loop {
                tokio::select! {
                    request = rx.recv() => {
                        let Some(Subscribe { destination, done }) = request else { return };
                        if let Err(e) = sub.subscribe(&destination).await {
                            tracing::warn!(destination, error = %e, "subscription failed");
                        }
                        waiting.push(done);
                    }
                    _ = ticker.tick(), if !waiting.is_empty() => {
                        // Subscriptions travel in order: once our probe comes back,
                        // the proxy has every subscription sent before it.
                        let frame = Frame::new(Kind::Fanout, "probe", probe.clone(), "");
                        let _ = link
                            .send(frame.into_message([Bytes::new()]), Instant::now() + Duration::from_millis(20))
                            .await;
                    }
                    message = sub.recv() => {
                        let Ok(message) = message else { return };
                        let mut frames = message.into_vec();
                        if frames.len() < 2 {
                            continue;
                        }
                        let topic = frames.remove(0);
                        let from = frames.remove(0);
                        let frame = match Frame::parse(frames) {
                            Ok(f) if f.destination == topic => f,
                            Ok(_) => continue,
                            Err(e) => {
                                malformed(&String::from_utf8_lossy(&from), &e);
                                continue;
                            }
                        };
                        if frame.destination_str() == probe {
                            for done in waiting.drain(..) {
                                let _ = done.send(());
                            }
                        } else if frame.kind == Kind::Fanout
                            && let Delivered::Waiting(waiting) =
                                routes.deliver_request(frame, &ReplyPath::None)
                        {
                            waiting.await;
                        }
                    }
                }
            }
        });
        self.keep(task.abort_handle());
        tx
    }

    /// Subscribes to fanouts for `destination` through the proxy's PUB, when there
    /// is one; returns once the proxy has the subscription (or after 5 s).
    pub async fn subscribe_fanout(&self, destination: &Destination) -> Result<()> {
        if !self.behind_proxy() {
            return Ok(());
        }
        let Some(subscriber) = &self.proxy().await?.subscriber else {
            return Ok(());
        };
        let (done, confirmed) = oneshot::channel();
        let _ = subscriber.send(Subscribe {
            destination: destination.to_string(),
            done,
        });
        if tokio::time::timeout(Duration::from_secs(5), confirmed)
            .await
            .is_err()
        {
            tracing::warn!(%destination, "the proxy's publisher did not confirm a subscription within 5 s");
        }
        Ok(())
    }

    /// Whether fanouts go out once through the proxy's PUB.
    pub fn publishes_fanout(&self) -> bool {
        self.behind_proxy() && !self.options.zmq.zmq_proxy_publisher.is_empty()
    }

    /// Publishes a fanout through the proxy's PUB.
    pub async fn publish(&self, frame: Frame, deadline: Instant) -> Result<()> {
        let kind = frame.kind;
        let sent = match self.proxy().await {
            Ok(proxy) => {
                proxy
                    .link
                    .send(frame.into_message([Bytes::new()]), deadline)
                    .await
            }
            Err(e) => Err(e),
        };
        telemetry::sent(kind, &sent);
        sent
    }

    /// The link to a node's address, started on first use.
    fn peer(&self, address: &str) -> Arc<Link> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(link) = peers.get(address)
            && !link.is_closed()
        {
            return link.clone();
        }
        // Links that gave up on their peers (gone for a minute) are forgotten.
        peers.retain(|_, link| !link.is_closed());
        let answers = self.answers.clone();
        let from = address.to_string();
        let on_message: OnMessage = Arc::new(move |frames: Vec<Bytes>| {
            match Frame::parse(frames) {
                Ok(frame) if frame.kind.is_answer() => answers.handle(frame),
                Ok(frame) => {
                    tracing::warn!(from, kind = ?frame.kind, "unexpected message on an outgoing connection dropped")
                }
                Err(e) => malformed(&from, &e),
            }
            None
        });
        let link = Arc::new(Link::start(
            address,
            None,
            self.options.zmq.zmq_send_queue,
            on_message,
            Some(FORGET_UNREACHABLE_PEER),
        ));
        peers.insert(address.to_string(), link.clone());
        link
    }

    /// Room for one more unanswered message to `member` (see [`Link::reserve`]);
    /// `None` behind the proxy, whose relay bounds its queues itself.
    pub async fn reserve(
        &self,
        member: &Member,
        deadline: Instant,
    ) -> Result<Option<tokio::sync::OwnedSemaphorePermit>> {
        if self.behind_proxy() || member.address.starts_with('@') {
            return Ok(None);
        }
        let reserved = self.peer(&member.address).reserve(deadline).await;
        // No room is a publish that failed: the message is not sent.
        if let Err(e) = &reserved {
            telemetry::failed(e);
        }
        reserved.map(Some)
    }

    /// Sends `frame` to the node `member`, waiting for queue room until `deadline`;
    /// counted as a publish, or a failed one.
    pub async fn send_to(&self, member: &Member, frame: Frame, deadline: Instant) -> Result<()> {
        let kind = frame.kind;
        let sent = self.deliver(member, frame, deadline).await;
        telemetry::sent(kind, &sent);
        sent
    }

    /// [`send_to`](Self::send_to), uncounted.
    async fn deliver(&self, member: &Member, frame: Frame, deadline: Instant) -> Result<()> {
        match member.address.strip_prefix('@') {
            Some(id) => {
                if !self.behind_proxy() {
                    return Err(Error::Config(
                        format!(
                            "{} is reached through a messaging-zmq-proxy: set use_router_proxy and \
                         zmq_proxy_router",
                            member.address
                        )
                        .into(),
                    ));
                }
                let proxy = self.proxy().await?;
                proxy
                    .link
                    .send(frame.into_message([Bytes::from(id.to_string())]), deadline)
                    .await
            }
            None if self.behind_proxy() => Err(Error::Config(
                format!(
                    "{} is reached directly but this transport sends through the proxy \
                 (use_router_proxy): every node of a deployment must use the same mode",
                    member.address
                )
                .into(),
            )),
            None => {
                self.peer(&member.address)
                    .send(frame.into_message([]), deadline)
                    .await
            }
        }
    }

    /// The members registered for `key`, from a cache renewed every second.
    pub async fn lookup(&self, key: &Destination) -> Result<Members> {
        if let Some(members) = self.cached(key) {
            return Ok(members);
        }
        let members: Members = self.matchmaker.lookup(key).await?.into();
        let mut cache = self.cache_lock();
        if members.is_empty() {
            cache.remove(key);
        } else {
            cache.insert(key.clone(), (members.clone(), Instant::now()));
        }
        Ok(members)
    }

    /// [`lookup`](Self::lookup), given up at `deadline` (a matchmaker that does not
    /// answer must not hold a call past its timeout).
    pub async fn lookup_until(&self, key: &Destination, deadline: Instant) -> Result<Members> {
        // The common case needs no timer.
        if let Some(members) = self.cached(key) {
            return Ok(members);
        }
        match tokio::time::timeout_at(deadline, self.lookup(key)).await {
            Ok(found) => found,
            Err(_) => Err(Error::Timeout(
                format!("the matchmaker did not answer a lookup of {key} in time").into(),
            )),
        }
    }

    /// The members of `key` looked up less than a second ago.
    pub fn cached(&self, key: &Destination) -> Option<Members> {
        let cache = self.cache_lock();
        let (members, at) = cache.get(key)?;
        (at.elapsed() < LOOKUP_CACHE).then(|| members.clone())
    }

    /// Forgets the cached members of `key` (one of them refused or failed).
    pub fn forget(&self, key: &Destination) {
        self.cache_lock().remove(key);
    }

    fn cache_lock(&self) -> std::sync::MutexGuard<'_, HashMap<Destination, (Members, Instant)>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Looks `key` up until someone is registered or `deadline` passes (then the
    /// result is empty, or the matchmaker's last error).
    pub async fn discover(&self, key: &Destination, deadline: Instant) -> Result<Members> {
        let mut pause = Duration::from_millis(10);
        // The last lookup that failed of itself, for a lookup cut short by the deadline.
        let mut failed: Option<Error> = None;
        loop {
            let error = match self.lookup_until(key, deadline).await {
                Ok(members) if !members.is_empty() => return Ok(members),
                Ok(_) => None,
                Err(e) => Some(e),
            };
            let now = Instant::now();
            if now >= deadline {
                return match (error, failed) {
                    // Out of time: why the lookups failed (a refused login, Redis
                    // unreachable) is the kind and the source.
                    (Some(Error::Timeout(why)), Some(cause)) => Err(Error::Timeout(
                        messaging_core::Detail::wrapping(format!("{why} (last: {cause})"), cause),
                    )),
                    (Some(e), _) => Err(e),
                    (None, _) => Ok(Members::default()),
                };
            }
            if let Some(e) = error {
                tracing::warn!(%key, error = %e, "matchmaker lookup failed; retrying");
                if !matches!(e, Error::Timeout(_)) {
                    failed = Some(e);
                }
            }
            tokio::time::sleep_until((now + pause).min(deadline)).await;
            pause = (pause * 2).min(MAX_LOOKUP_PAUSE);
        }
    }

    fn registrations_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(Destination, Member), usize>> {
        self.registrations.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `member` under `key` (counted: several listeners of this node may
    /// share a registration) and keeps it renewed.
    pub async fn register(self: &Arc<Self>, key: &Destination, member: &Member) -> Result<()> {
        let first = {
            let mut registrations = self.registrations_lock();
            let count = registrations
                .entry((key.clone(), member.clone()))
                .or_default();
            *count += 1;
            *count == 1
        };
        if !self
            .renewing
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            self.start_renewals();
        }
        if first {
            // Under the lock, after any pending removal of the same registration.
            let _writing = self.matchmaking.lock().await;
            let registered = self
                .matchmaker
                .register(key, member, self.options.registration_ttl())
                .await;
            if registered.is_err() {
                self.release(key, member);
                return registered;
            }
        }
        self.forget(key);
        Ok(())
    }

    /// Drops one count of a registration, at once; [`Node::settle`] then removes it
    /// from the matchmaker if that was the last.
    pub fn release(&self, key: &Destination, member: &Member) {
        let mut registrations = self.registrations_lock();
        let entry = (key.clone(), member.clone());
        if let Some(n) = registrations.get_mut(&entry) {
            *n -= 1;
            if *n == 0 {
                registrations.remove(&entry);
            }
        }
        drop(registrations);
        self.forget(key);
    }

    /// Removes a registration from the matchmaker unless this node registered it
    /// again meanwhile.
    pub async fn settle(&self, key: &Destination, member: &Member) {
        let _writing = self.matchmaking.lock().await;
        if self
            .registrations_lock()
            .contains_key(&(key.clone(), member.clone()))
        {
            return;
        }
        self.unregister(key, member).await;
    }

    /// Removes a registration from the matchmaker (a failure is logged: the
    /// registration then expires by itself). Called under `matchmaking`.
    async fn unregister(&self, key: &Destination, member: &Member) {
        if let Err(e) = self.matchmaker.unregister(key, member).await {
            tracing::warn!(%key, error = %e, "could not unregister; the registration expires by itself");
        }
    }

    /// Renews every registration every `zmq_target_update` seconds (at most half
    /// their TTL; sooner after a failure), so they outlive their TTL while this node
    /// lives.
    fn start_renewals(self: &Arc<Self>) {
        let node = Arc::downgrade(self);
        let every = self.options.registration_refresh();
        let task = tokio::spawn(async move {
            let mut pause = every;
            loop {
                tokio::time::sleep(pause).await;
                let Some(node) = node.upgrade() else { return };
                let _writing = node.matchmaking.lock().await;
                let current: Vec<(Destination, Member)> =
                    node.registrations_lock().keys().cloned().collect();
                pause = every;
                for (key, member) in current {
                    if let Err(e) = node
                        .matchmaker
                        .register(&key, &member, node.options.registration_ttl())
                        .await
                    {
                        tracing::warn!(%key, error = %e, "registration renewal failed");
                        pause = every.min(RENEW_AFTER_FAILURE);
                    }
                }
            }
        });
        self.keep(task.abort_handle());
    }

    /// Unregisters everything and stops every task and connection.
    pub async fn close(&self) {
        let _writing = self.matchmaking.lock().await;
        let current: Vec<(Destination, Member)> =
            self.registrations_lock().drain().map(|(k, _)| k).collect();
        for (key, member) in current {
            self.unregister(&key, &member).await;
        }
        // With them the counting of this node's peers, which gives its count back.
        self.abort_tasks();
        // Dropping the links ends their connections, their peers' counts and the
        // count of what waits in them.
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
