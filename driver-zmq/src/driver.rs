//! [`ZmqDriver`]: RPC and notifications sent straight to the nodes that serve them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use messaging_core::driver::{
    CallOutcome, Capabilities, ChannelListener, Driver, MessageSource, NotificationFormat,
    NotificationListener, RequestListener, SendOptions, deadline_after,
};
use messaging_core::wire::request::new_id;
use messaging_core::wire::{
    ContextPacking, NotificationMessage, Priority, ReplyAddress, Request, envelope,
};
use messaging_core::{Config, Detail, Error, Result, Retry, Target, TransportUrl};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::destination::{Destination, Member};
use crate::frame::{Frame, Kind};
use crate::node::{Members, Node};
use crate::options::ZmqOptions;
use crate::outbox::{Acked, Delivery, Outbox, send_acked};
use crate::routes::RouteId;
use crate::routes::{BACKLOG, ListenerQueue};

/// A request's body: the inner message without the 2.0 envelope (the frames carry
/// the version), which saves escaping it into a string and back.
fn encode_request(request: &Request) -> Result<Bytes> {
    Ok(Bytes::from(envelope::encode_bare(
        &request.wire(ContextPacking::Flattened),
    )?))
}

/// The ZeroMQ driver of one transport: one node (a ROUTER, or a connection to the
/// proxy) and its links to the nodes it sends to.
pub struct ZmqDriver {
    node: Arc<Node>,
    outbox: Arc<Outbox>,
    turn: AtomicUsize,
}

impl std::fmt::Debug for ZmqDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZmqDriver")
            .field("node", &self.node)
            .finish()
    }
}

impl ZmqDriver {
    /// A driver for `url` configured by `config` (`[oslo_messaging_zmq]` with the
    /// URL's query parameters laid over it). Binds and connects on first use.
    pub fn new(url: &TransportUrl, config: &Config) -> Result<ZmqDriver> {
        let options = Arc::new(ZmqOptions::resolve(url, config)?);
        let node = Node::new(options.clone())?;
        Ok(ZmqDriver {
            outbox: Outbox::new(node.clone(), options.zmq.zmq_send_queue),
            node,
            turn: AtomicUsize::new(0),
        })
    }

    fn options(&self) -> &ZmqOptions {
        &self.node.options
    }

    fn exchange<'a>(&'a self, target: &'a Target) -> &'a str {
        target.exchange_or(&self.options().control_exchange)
    }

    fn destination(&self, target: &Target) -> Result<Destination> {
        let topic = target.required_topic()?.to_string();
        let exchange = self.exchange(target).to_string();
        Ok(match target.server.as_deref().filter(|s| !s.is_empty()) {
            Some(server) if !target.fanout => Destination::Server {
                exchange,
                topic,
                server: server.to_string(),
            },
            _ => Destination::Topic { exchange, topic },
        })
    }

    /// Every one of `members` once, starting at the next in turn.
    fn in_turn<'a>(&self, members: &'a [Member]) -> impl Iterator<Item = &'a Member> {
        let first = self.turn.fetch_add(1, Ordering::Relaxed) % members.len().max(1);
        members.iter().cycle().skip(first).take(members.len())
    }

    /// One of `members`, in turn.
    fn pick<'a, T>(&self, members: &'a [T]) -> &'a T {
        &members[self.turn.fetch_add(1, Ordering::Relaxed) % members.len()]
    }

    fn undeliverable(&self, target: &Target, key: &Destination) -> Error {
        Error::Undeliverable {
            exchange: self.exchange(target).to_string(),
            routing_key: key.static_name(),
        }
    }

    /// Finds a node serving `key` before `deadline`; none is `Undeliverable` with
    /// `at_least_once` (at once) and a timeout otherwise.
    async fn find(
        &self,
        key: &Destination,
        target: &Target,
        deadline: Instant,
        at_least_once: bool,
        waited: Duration,
    ) -> Result<Members> {
        let members = if at_least_once {
            self.node.lookup_until(key, deadline).await?
        } else {
            self.node.discover(key, deadline).await?
        };
        if !members.is_empty() {
            return Ok(members);
        }
        if at_least_once {
            return Err(self.undeliverable(target, key));
        }
        Err(Error::Timeout(
            format!("no server registered for {key} within {waited:?}").into(),
        ))
    }

    /// The reply address a call carries: replies come back on the connection the
    /// call went out on, so it is informative only (a node id behind the proxy).
    async fn reply_queue(&self) -> Result<String> {
        Ok(if self.options().zmq.use_router_proxy {
            self.node.address().await?.address.clone()
        } else {
            String::new()
        })
    }

    /// Calls with the encoded request `body` (its reply id `msg_id`). Requests are
    /// encoded before: the futures of sends then do not carry them.
    async fn call(
        &self,
        target: &Target,
        key: Destination,
        (msg_id, body): (String, Bytes),
        options: &SendOptions,
        timeout: Duration,
    ) -> Result<Value> {
        let deadline = deadline_after(timeout);
        let topic = target.required_topic()?;
        let destination = key.to_bytes();
        let mut refused: Vec<String> = Vec::new();
        let mut pause = Duration::from_millis(10);
        loop {
            let members = self
                .find(&key, target, deadline, options.at_least_once, timeout)
                .await?;
            // Nodes that refused this call are tried again only when nobody else is left.
            let fresh: Vec<&Member> = members
                .iter()
                .filter(|m| !refused.contains(&m.address))
                .collect();
            if fresh.is_empty() && options.at_least_once {
                return Err(self.undeliverable(target, &key));
            }
            let fresh_count = fresh.len();
            let member = if fresh.is_empty() {
                self.pick(&members).clone()
            } else {
                (*self.pick(&fresh)).clone()
            };
            let pending = self.node.answers.replies.register(&msg_id);
            let frame = Frame::new(
                Kind::Call,
                msg_id.clone(),
                destination.clone(),
                body.clone(),
            );
            let (_unanswered, sent) = match self.node.reserve(&member, deadline).await {
                Ok(permit) => (permit, self.node.send_to(&member, frame, deadline).await),
                Err(e) => (None, Err(e)),
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let outcome = match sent {
                // An unreachable node is tried no further than a refusing one.
                Err(e @ Error::Transport(_)) => {
                    tracing::debug!(%key, error = %e, "node unreachable; looking again");
                    Ok(CallOutcome::Refused {
                        reason: e.to_string(),
                    })
                }
                Err(e) => Err(e),
                Ok(()) => {
                    pending
                        .outcome_until(deadline, left, options.call_monitor_timeout, topic)
                        .await
                }
            };
            match outcome {
                Ok(CallOutcome::Replied(result)) => return Ok(result),
                Ok(CallOutcome::Refused { reason }) => {
                    tracing::debug!(%key, node = %member.address, "refused; looking again");
                    self.node.forget(&key);
                    if Instant::now() >= deadline {
                        return Err(Error::Timeout(format!(
                            "no server took the call on {key} within {timeout:?} (last: {reason})"
                        ).into()));
                    }
                    refused.push(member.address);
                    if fresh_count <= 1 && !options.at_least_once {
                        // Everyone refused: wait a while (longer each time) for a
                        // server to come (back), then try them all again.
                        let now = Instant::now();
                        tokio::time::sleep_until((now + pause).min(deadline)).await;
                        pause = (pause * 2).min(Duration::from_millis(500));
                        refused.clear();
                    }
                }
                Err(Error::Timeout(why)) => {
                    // Said with the node it went to, keeping the cause's kind and source.
                    let message = format!("{why} (sent to {})", member.address);
                    return Err(Error::Timeout(Detail::wrapping(
                        message,
                        Error::Timeout(why),
                    )));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Casts the encoded request `body` (its unique id `id`). The common case (nodes
    /// known, at most once, no fanout) is inline; the others are boxed, so the future
    /// of every cast stays small (it is boxed itself, and moved into place).
    async fn cast(
        &self,
        target: &Target,
        key: &Destination,
        (id, body): (String, Bytes),
        options: &SendOptions,
    ) -> Result<()> {
        let wait = self.options().send_timeout();
        let deadline = deadline_after(wait);
        let members = match self.node.cached(key) {
            Some(members) if !members.is_empty() => members,
            _ => {
                match Box::pin(self.find(key, target, deadline, options.at_least_once, wait)).await
                {
                    Err(Error::Timeout(why)) => {
                        // As on RabbitMQ, a cast nobody listens for is dropped.
                        tracing::warn!(%key, "cast dropped: {why}");
                        return Ok(());
                    }
                    other => other?,
                }
            }
        };
        // Frames share the bytes: the text is made once per cast.
        let destination = key.to_bytes();
        if target.fanout {
            let frame = Frame::new(Kind::Fanout, id, destination, body);
            return Box::pin(self.fanout(key, &members, frame, deadline)).await;
        }
        if options.at_least_once {
            return Box::pin(self.confirmed_cast(
                target,
                key,
                &members,
                destination,
                body,
                deadline,
            ))
            .await;
        }
        // The first node that can be reached takes it (at most once, unconfirmed).
        let mut last_error = None;
        let mut frame = Some(Frame::new(Kind::Cast, id, destination, body));
        let last = members.len().saturating_sub(1);
        for (i, member) in self.in_turn(&members).enumerate() {
            // Copies only for tries that may fail over; the last takes the frame.
            let Some(attempt) = (if i == last {
                frame.take()
            } else {
                frame.clone()
            }) else {
                break;
            };
            match self.node.send_to(member, attempt, deadline).await {
                Ok(()) => return Ok(()),
                Err(e) => last_error = Some(e),
            }
        }
        self.node.forget(key);
        Err(last_error
            .unwrap_or_else(|| Error::Transport(format!("no node to cast to on {key}").into())))
    }

    /// A fanout cast: through the proxy's publisher, or to every node of `members`,
    /// whatever the others do.
    async fn fanout(
        &self,
        key: &Destination,
        members: &[Member],
        frame: Frame,
        deadline: Instant,
    ) -> Result<()> {
        if self.node.publishes_fanout() {
            return self.node.publish(frame, deadline).await;
        }
        for member in members {
            if let Err(e) = self.node.send_to(member, frame.clone(), deadline).await {
                tracing::warn!(%key, node = %member.address, error = %e, "fanout not sent to this node");
            }
        }
        Ok(())
    }

    /// A cast sent with `at_least_once`: a server must take it; each node is tried once.
    async fn confirmed_cast(
        &self,
        target: &Target,
        key: &Destination,
        members: &[Member],
        destination: Bytes,
        body: Bytes,
        deadline: Instant,
    ) -> Result<()> {
        let mut last_error = None;
        for member in self.in_turn(members) {
            let frame = Frame::new(
                Kind::ConfirmedCast,
                new_id(),
                destination.clone(),
                body.clone(),
            );
            match send_acked(&self.node, member, frame, deadline).await {
                Acked::Yes => return Ok(()),
                Acked::Refused(_) => {}
                Acked::Unreachable(why) | Acked::Silent(why) => last_error = Some(why),
            }
        }
        self.node.forget(key);
        Err(match last_error {
            Some(why) => {
                Error::DeliveryFailure(format!("cast to {key} not confirmed: {why}").into())
            }
            None => self.undeliverable(target, key),
        })
    }
}

#[async_trait]
impl Driver for ZmqDriver {
    fn name(&self) -> &str {
        "zmq"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    // Written out rather than `async fn`: calls and casts get futures of their own,
    // each boxed at its size, and neither carries the request (encoded first).
    fn send<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        target: &'life1 Target,
        request: Request,
        options: &'life2 SendOptions,
    ) -> Pin<Box<dyn Future<Output = Result<Value>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let key = match self.destination(target) {
            Ok(key) => key,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        match options.timeout {
            Some(timeout) => Box::pin(async move {
                let msg_id = new_id();
                let reply = ReplyAddress::new(
                    msg_id.clone(),
                    self.reply_queue().await?,
                    options.call_monitor_timeout,
                );
                let body = encode_request(&Request {
                    reply: Some(reply),
                    ..request
                })?;
                self.call(target, key, (msg_id, body), options, timeout)
                    .await
            }),
            None => match encode_request(&request) {
                Err(e) => Box::pin(std::future::ready(Err(e))),
                Ok(body) => {
                    let id = request.unique_id.unwrap_or_else(new_id);
                    // Boxed to keep this future within glibc's per-thread cache sizes.
                    let key = Box::new(key);
                    Box::pin(async move {
                        self.cast(target, &key, (id, body), options).await?;
                        Ok(Value::Null)
                    })
                }
            },
        }
    }

    async fn send_notification(
        &self,
        target: &Target,
        message: NotificationMessage,
        _format: NotificationFormat,
        _retry: Retry,
    ) -> Result<()> {
        let key = Destination::Notifications {
            exchange: self.exchange(target).to_string(),
            topic: target.required_topic()?.to_string(),
            pool: None,
        };
        // The frames version the protocol: the body is the bare message, whatever the
        // notification format (which only matters to Python consumers on a broker).
        let body = Bytes::from(message.encode(ContextPacking::Flattened, false)?);
        let deadline = deadline_after(self.options().send_timeout());
        let mut delivery = Delivery::new(key, body, deadline);
        // Behind notifications already kept for this destination, to keep their order.
        if !self.outbox.holds(&delivery.key) && delivery.attempt(&self.node, &self.turn).await? {
            return Ok(());
        }
        // Nobody takes it yet: keep it until someone does, as a broker's queue would.
        self.outbox.keep(delivery)
    }

    async fn listen(&self, target: &Target) -> Result<Box<RequestListener>> {
        let failure = |reason: messaging_core::Detail| Error::ListenFailure {
            target: target.to_string(),
            reason,
        };
        let Some(server) = target.server.as_deref().filter(|s| !s.is_empty()) else {
            return Err(failure("a server target needs a server".into()));
        };
        let exchange = self.exchange(target).to_string();
        let topic = target.required_topic()?.to_string();
        let shared = Destination::Topic {
            exchange: exchange.clone(),
            topic: topic.clone(),
        };
        let own = Destination::Server {
            exchange,
            topic,
            server: server.to_string(),
        };
        let member = self
            .node
            .address()
            .await
            .map_err(|e| failure(e.into()))?
            .clone();
        let (tx, rx) = mpsc::channel(BACKLOG);
        let mut registrations = Registrations::new(&self.node);
        for destination in [&shared, &own] {
            self.node
                .routes
                .add_server(registrations.route, destination, tx.clone());
        }
        self.node
            .subscribe_fanout(&shared)
            .await
            .map_err(|e| failure(e.into()))?;
        for key in [shared, own] {
            if let Err(e) = self.node.register(&key, &member).await {
                registrations.close().await;
                return Err(failure(e.into()));
            }
            registrations.entries.push((key, member.clone()));
        }
        Ok(Box::new(ChannelListener::bounded(rx, registrations)))
    }

    async fn listen_for_notifications(
        &self,
        targets_and_priorities: &[(Target, Priority)],
        pool: Option<&str>,
    ) -> Result<Box<NotificationListener>> {
        let mut keys: Vec<Destination> = Vec::new();
        for (target, priority) in targets_and_priorities {
            let key = Destination::Notifications {
                exchange: self.exchange(target).to_string(),
                topic: format!("{}.{}", target.required_topic()?, priority.as_str()),
                pool: None,
            };
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        let node_address = self.node.address().await?.clone();
        let pool = pool.unwrap_or("").to_string();
        let member = Member {
            address: node_address.address,
            pool: Some(pool.clone()),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let mut registrations = Registrations::new(&self.node);
        let queue = ListenerQueue::new(tx, registrations.stopped.clone());
        for key in keys {
            self.node
                .routes
                .add_listener(registrations.route, &key, &pool, queue.clone());
            if let Err(e) = self.node.register(&key, &member).await {
                registrations.close().await;
                return Err(e);
            }
            registrations.entries.push((key, member.clone()));
        }
        Ok(Box::new(ChannelListener::new(rx, registrations)))
    }

    async fn cleanup(&self) {
        self.node.close().await;
    }
}

/// A listener's routes and registrations: stopping removes both, so what still
/// reaches this node for it is refused and goes elsewhere.
struct Registrations {
    node: Arc<Node>,
    route: RouteId,
    entries: Vec<(Destination, Member)>,
    /// Set on stop: a notification requeued after it is dropped, not handed back.
    stopped: Arc<AtomicBool>,
    /// The removal from the matchmaker that `stop` started.
    removing: Option<tokio::task::JoinHandle<()>>,
}

impl Registrations {
    fn new(node: &Arc<Node>) -> Registrations {
        Registrations {
            node: node.clone(),
            route: node.routes.new_id(),
            entries: Vec::new(),
            stopped: Arc::default(),
            removing: None,
        }
    }

    /// Stops routing here and releases the registrations; returns what is left to
    /// remove from the matchmaker.
    fn release(&mut self) -> Vec<(Destination, Member)> {
        self.stopped.store(true, Ordering::Relaxed);
        self.node.routes.remove(self.route);
        let entries = std::mem::take(&mut self.entries);
        for (key, member) in &entries {
            self.node.release(key, member);
        }
        entries
    }

    /// [`release`](Self::release), and the matchmaker's part in a task (none when
    /// there is nothing to remove, or no runtime any more: the TTL then expires them).
    fn remove_in_background(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        let entries = self.release();
        if entries.is_empty() {
            return None;
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let node = self.node.clone();
        Some(runtime.spawn(async move {
            for (key, member) in entries {
                node.settle(&key, &member).await;
            }
        }))
    }
}

#[async_trait]
impl MessageSource for Registrations {
    fn stop(&mut self) {
        if let Some(removing) = self.remove_in_background() {
            self.removing = Some(removing);
        }
    }

    async fn close(&mut self) {
        for (key, member) in self.release() {
            self.node.settle(&key, &member).await;
        }
        if let Some(removing) = self.removing.take() {
            let _ = removing.await;
        }
    }
}

impl Drop for Registrations {
    fn drop(&mut self) {
        // A listener dropped without stop: its routes and registrations must not
        // outlive it.
        self.remove_in_background();
    }
}
