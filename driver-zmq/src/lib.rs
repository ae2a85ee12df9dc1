//! The brokerless ZeroMQ transport (`zmq://`) of the messaging crate family, on the
//! pure-Rust `zeromq` crate.
//!
//! Nothing sits on the data path: a client sends a call straight to a node that
//! serves its target, and the reply comes back on the same connection. A name service
//! (the *matchmaker*) says which nodes serve what:
//!
//! | URL | matchmaker |
//! |---|---|
//! | `zmq+redis://host:6379` (or `zmq://` with `rpc_zmq_matchmaker = redis`) | Redis, registrations with a TTL, renewed while the node lives |
//! | `zmq+static://` | the fixed map of `zmq_static_targets` (`name=host:port`, name a topic, `topic.server`, `topic.priority` or `*`) |
//! | `zmq+dummy://` | one table in this process (tests, all-in-one) |
//!
//! `[oslo_messaging_zmq]` options ([`ZmqSection`], which this crate owns and [`register`]
//! registers) apply; many of oslo's are accepted and ignored
//! ([`ZmqSection::IGNORED`](messaging_core::config::DriverSection::IGNORED) says why).
//! Query parameters set them too, e.g.
//! `zmq+redis://127.0.0.1:6379/?rpc_zmq_host=10.0.0.5&zmq_target_expire=30`.
//!
//! # Semantics
//!
//! - A transport that serves anything binds one ROUTER on `rpc_zmq_bind_address`, on
//!   a random port of `rpc_zmq_min_port..=rpc_zmq_max_port` (`rpc_zmq_bind_port_retries`
//!   tries), and registers `rpc_zmq_host:port` under each destination it serves.
//! - Bare topics go to one registered node in turn, and on that node to one server in
//!   turn; `topic.server` to that server; fanout to every node (or once through the
//!   proxy's PUB), and there to every server of the topic.
//! - A node that no longer serves a destination refuses what reaches it; a call then
//!   looks again and tries another node. Calls look servers up until their timeout
//!   (`at_least_once` fails at once with `Undeliverable` when nobody is registered).
//! - Each peer has one connection with a bounded send queue (`zmq_send_queue`): a slow
//!   or dead peer makes the sends to it wait and then time out with an error naming
//!   it, without holding up sends to other peers; the connection reconnects with
//!   backoff, and drops what it holds once its sender gave up.
//! - Back-pressure: each server and notification listener takes at most 1024
//!   messages ahead of what it has handled (requests waiting for one of its
//!   `executor_thread_pool_size` slots; notifications not yet settled). When one is
//!   that far behind, its node reads nothing more until it has room, so the senders'
//!   TCP windows fill; a connection keeps at most `zmq_send_queue` casts and fanouts
//!   that the receiving node has not yet said it took (`T` answers), so casts then
//!   wait and fail after `zmq_send_timeout` with an error naming the peer, and
//!   memory stays bounded on both sides. The price: while one server of a node is
//!   that far behind, the node's other servers wait too.
//! - Notifications go to one listener of each pool registered for `<topic>.<priority>`
//!   (listeners without a pool form one pool); the receiving node acks each, and the
//!   notifier tries another member when a node refuses or does not ack. A
//!   notification nobody listens for yet is kept by its notifier, in the background,
//!   for `zmq_send_timeout` seconds (the notifier's `retry` is not used: the timeout
//!   bounds the tries). A requeued notification goes back to its listener (or is
//!   dropped with a warning once the listener stopped). What a node took is lost if
//!   that process dies: there is no broker.
//!
//! # Metrics
//!
//! Through the `metrics` facade, `driver="zmq"`: messages handed to peers by kind
//! (`rpc`, `reply`, `notification`), failed attempts (`timeout` or `error`), the
//! transport's connected peers (both directions) and the messages waiting in its
//! outgoing queues; a transport takes its part of both gauges away when it closes.
//!
//! # Security
//!
//! The `zeromq` crate has no CURVE encryption: messages travel in clear text and
//! anyone who can reach a node's port can call its servers. Use this transport on
//! trusted networks only.
//!
//! # Frames
//!
//! Every message is five frames, the first naming the protocol version (see
//! [`frame`] for the layout and [`destination`] for the destination texts):
//!
//! ```text
//! client DEALER → node ROUTER   ["omsg-zmq/1", kind, id, destination, body]
//! node ROUTER  → client DEALER  ["omsg-zmq/1", answer kind, id, "", body]
//! ```
//!
//! Kinds: `C` call, `S` cast, `K` confirmed cast (`at_least_once`), `F` fanout, `N`
//! notification; answers `R` reply (body:
//! oslo's reply JSON with `result`/`failure`/`ending`, heartbeats included), `A` ack,
//! `X` refused, `T` taken (empty id; body: how many casts and fanouts of one
//! multipart message a node handed over, in decimal, sent back on the connection
//! they came by). Bodies are oslo's JSON messages (request, notification, reply) as the
//! RabbitMQ driver writes them inside the 2.0 envelope, here without the envelope:
//! frame 0 versions the protocol. Through the proxy a routing frame goes first (see
//! [`proxy`]). A malformed message is logged and dropped; the node keeps serving. The
//! node hands a request's body to its server undecoded (the server decodes it on the
//! request's own task), so a call whose body is not a request is answered with a
//! failure naming why instead of timing out.
//!
//! A client DEALER may send several messages back to back in one multipart message
//! (5 × n frames): a link whose queue holds more than one message writes them at once,
//! up to 64 messages or about 256 KiB, so a busy link pays one write and one wake-up
//! of the receiver for many messages. The node reads them one by one; a bad one is
//! dropped alone. Messages to the proxy always travel one at a time.
//!
//! ```no_run
//! # async fn run() -> messaging_core::Result<()> {
//! use messaging_core::{Config, DriverRegistry};
//!
//! let mut registry = DriverRegistry::with_memory();
//! driver_zmq::register(&mut registry);
//! let transport = registry
//!     .transport("zmq+redis://127.0.0.1:6379/?rpc_zmq_host=127.0.0.1", &Config::default())
//!     .await?;
//! # Ok(()) }
//! ```

mod answers;
pub mod destination;
mod driver;
pub mod frame;
mod link;
pub mod matchmaker;
mod node;
mod options;
mod outbox;
pub mod proxy;
mod reply_path;
mod routes;
mod telemetry;

use std::sync::Arc;

use async_trait::async_trait;
use messaging_core::driver::Driver;
use messaging_core::{Config, DriverFactory, DriverRegistry, Result, TransportUrl};

pub use driver::ZmqDriver;
pub use options::{MatchmakerKind, ZmqOptions, ZmqSection};

/// Makes [`ZmqDriver`]s; registered for `zmq` (and so `zmq+redis`, `zmq+static`,
/// `zmq+dummy`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ZmqFactory;

#[async_trait]
impl DriverFactory for ZmqFactory {
    async fn connect(&self, url: &TransportUrl, config: &Config) -> Result<Arc<dyn Driver>> {
        Ok(Arc::new(ZmqDriver::new(url, config)?))
    }
}

/// Registers the driver under `zmq`, and its section, [`ZmqSection`].
pub fn register(registry: &mut DriverRegistry) {
    registry.register("zmq", Arc::new(ZmqFactory));
    registry.register_section::<ZmqSection>();
}
