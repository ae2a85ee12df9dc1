//! The contract between the core and a driver: the [`Driver`] trait, what it is
//! handed and what it hands back.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::wire::{NotificationMessage, Priority, Request};
use crate::{Config, RemoteError, Result, Target, TransportUrl};

/// What a driver can do; the core refuses the rest at setup with a clear error.
///
/// Non-exhaustive, so that a new capability is not a breaking change: a driver starts
/// from [`Capabilities::ALL`] (or [`Capabilities::NONE`]) and changes fields.
///
/// ```
/// use messaging_core::Capabilities;
/// let mut caps = Capabilities::ALL;
/// caps.total_order = false;
/// assert!(caps.rpc && !caps.total_order);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `call` and `cast`, and RPC servers.
    pub rpc: bool,
    /// Fanout casts.
    pub fanout: bool,
    /// Sending notifications and notification listeners.
    pub notify: bool,
    /// Listeners may requeue a notification.
    pub requeue: bool,
    /// Listener pools (each pool gets its own copy of every notification).
    pub pools: bool,
    /// `at_least_once` (the AMQP `mandatory` flag) is honoured.
    pub mandatory: bool,
    /// Queues and fanouts belong to their exchange. False on RabbitMQ, where queue
    /// names (`<topic>`, `<topic>.<priority>`) and fanout exchanges (`<topic>_fanout`)
    /// are global to the virtual host, so one topic in two exchanges shares them, as
    /// it does for Python oslo.messaging.
    pub isolated_exchanges: bool,
    /// One listener receives a topic's notifications in the order they were sent.
    /// False on Kafka, which keeps order per partition only.
    pub total_order: bool,
}

impl Capabilities {
    /// Everything.
    pub const ALL: Capabilities = Capabilities {
        rpc: true,
        fanout: true,
        notify: true,
        requeue: true,
        pools: true,
        mandatory: true,
        isolated_exchanges: true,
        total_order: true,
    };

    /// Nothing: a driver that only moves bytes and is built up field by field.
    pub const NONE: Capabilities = Capabilities {
        rpc: false,
        fanout: false,
        notify: false,
        requeue: false,
        pools: false,
        mandatory: false,
        isolated_exchanges: false,
        total_order: false,
    };
}

/// Retries for a send: `None`/`-1` forever, `0` never, `N` at most N times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retry {
    /// Retry until it works (oslo's `retry=None` or `-1`).
    #[default]
    Forever,
    /// At most this many retries after the first attempt.
    Times(u32),
}

impl Retry {
    /// Whether another attempt is allowed after `failures` failed ones.
    ///
    /// ```
    /// use messaging_core::Retry;
    /// assert!(Retry::Forever.allows_another(1_000));
    /// assert!(Retry::Times(2).allows_another(2));
    /// assert!(!Retry::Times(2).allows_another(3));
    /// assert!(!Retry::Times(0).allows_another(1));
    /// ```
    pub fn allows_another(self, failures: u32) -> bool {
        match self {
            Retry::Forever => true,
            Retry::Times(n) => failures <= n,
        }
    }

    /// oslo's integer form: negative means forever.
    pub fn from_oslo(retry: Option<i64>) -> Self {
        match retry {
            None => Retry::Forever,
            Some(n) if n < 0 => Retry::Forever,
            Some(n) => Retry::Times(u32::try_from(n).unwrap_or(u32::MAX)),
        }
    }
}

/// Per-send settings of an RPC request.
#[derive(Debug, Clone, PartialEq)]
pub struct SendOptions {
    /// Wait for a reply (a call) within this time; `None` for a cast.
    pub timeout: Option<Duration>,
    /// Fail a call when neither a reply nor a heartbeat arrives within this time.
    pub call_monitor_timeout: Option<Duration>,
    /// Reconnect attempts before giving up with `DeliveryFailure`.
    pub retry: Retry,
    /// Publish as mandatory: an unroutable message fails with `Undeliverable`.
    pub at_least_once: bool,
}

/// How a notification is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationFormat {
    /// oslo's `messaging` driver: the message without envelope.
    V1,
    /// oslo's `messagingv2` driver: inside the 2.0 envelope.
    V2,
}

/// An RPC request handed to a server by a driver.
pub struct IncomingRequest {
    /// The request, decoded or still as it came.
    pub request: ReceivedRequest,
    /// How to answer; `None` for casts.
    pub responder: Option<Box<dyn Responder>>,
}

impl fmt::Debug for IncomingRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingRequest")
            .field("request", &self.request)
            .field("expects_reply", &self.responder.is_some())
            .finish()
    }
}

/// A request as a driver hands it over.
///
/// A driver that needs the request's reply address to answer it decodes the request
/// itself; one that can answer without it (the ZeroMQ driver answers by call id)
/// hands the body over as it came, so that the JSON is decoded on the request's own
/// task, in parallel, and not on the one task reading the connection.
///
/// ```
/// use messaging_core::driver::ReceivedRequest;
///
/// let body = br#"{"method": "echo", "args": {"data": 1}}"#;
/// let received = ReceivedRequest::Encoded(bytes::Bytes::from_static(body));
/// assert_eq!(received.decode().unwrap().method, "echo");
/// ```
// Not boxed: a request is moved into its channel once and boxed by the server's
// loop anyway; a box here would be one more allocation per decoded request.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum ReceivedRequest {
    /// Decoded by the driver (its context includes `client_timeout`).
    Decoded(Request),
    /// A message body, enveloped or not, that the server decodes; one that is not a
    /// request is logged and dropped (a call gets a failure back).
    Encoded(bytes::Bytes),
}

impl ReceivedRequest {
    /// The request, decoded if it was not yet.
    pub fn decode(self) -> Result<Request> {
        match self {
            ReceivedRequest::Decoded(request) => Ok(request),
            ReceivedRequest::Encoded(body) => Request::decode(&body),
        }
    }
}

impl From<Request> for ReceivedRequest {
    fn from(request: Request) -> Self {
        ReceivedRequest::Decoded(request)
    }
}

impl fmt::Debug for ReceivedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReceivedRequest::Decoded(request) => request.fmt(f),
            // The body may hold credentials in its context: only its size.
            ReceivedRequest::Encoded(body) => write!(f, "Encoded({} bytes)", body.len()),
        }
    }
}

/// Sends the reply (and call-monitor heartbeats) of one call. The server always
/// replies (a panicking endpoint becomes a `RuntimeError` failure); a responder
/// dropped without replying sends nothing and the caller times out.
#[async_trait]
pub trait Responder: Send + Sync {
    /// Sends the final reply.
    async fn reply(&self, outcome: std::result::Result<Value, RemoteError>) -> Result<()>;
    /// Sends a heartbeat telling the caller the call is still running.
    async fn heartbeat(&self) -> Result<()>;
}

/// Receives messages of type `T` (requests, notifications) for a server or listener.
///
/// Contract for drivers:
/// - `next` must be cancel-safe: the consume loop races it against the stop signal
///   and batch timeouts, and a message must not be lost when the future is dropped
///   before it returns (take messages from a channel, as `tokio::sync::mpsc` does).
/// - `next` returns `None` only once stopped and drained, or when the transport is
///   gone for good (the server then logs an error and can be started again).
/// - RPC requests are acknowledged by the driver before they are returned (oslo's
///   at-most-once execution); duplicates can be dropped with
///   [`DuplicateFilter`](crate::driver::DuplicateFilter) (or
///   [`RequestIntake`](crate::driver::RequestIntake), which uses one).
#[async_trait]
pub trait Listener<T: Send>: Send {
    /// The next message; `None` once stopped and drained.
    async fn next(&mut self) -> Option<T>;
    /// Stops consuming new messages; those already received are still returned by `next`.
    async fn stop(&mut self);
    /// Releases everything (connections, fanout queues).
    async fn cleanup(&mut self);
    /// How many messages the driver has received and holds for `next`, if it knows
    /// (the server's backlog metric); `None` by default.
    fn backlog(&self) -> Option<usize> {
        None
    }
}

/// Receives RPC requests for one server target.
pub type RequestListener = dyn Listener<IncomingRequest>;

/// Receives notifications for (target, priority) pairs.
pub type NotificationListener = dyn Listener<IncomingNotification>;

/// The verdict on a received notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Done with it: acknowledge.
    Ack,
    /// Put it back for another delivery.
    Requeue,
}

/// A notification handed to a listener by a driver.
pub struct IncomingNotification {
    /// The decoded notification.
    pub message: NotificationMessage,
    /// Settles the message with the broker.
    pub settle: Box<dyn Settle>,
}

impl fmt::Debug for IncomingNotification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingNotification")
            .field("message", &self.message)
            .finish()
    }
}

/// Acknowledges or requeues one notification. Dropping it unsettled (a lost or
/// panicked handler) must return the message to the broker, as a closed consumer's
/// unacknowledged messages are.
#[async_trait]
pub trait Settle: Send + Sync {
    /// Acks or requeues.
    async fn settle(self: Box<Self>, disposition: Disposition) -> Result<()>;
}

/// A transport driver: moves requests, replies and notifications.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// The driver's name, e.g. `rabbit`.
    fn name(&self) -> &str;

    /// What this driver can do.
    fn capabilities(&self) -> Capabilities;

    /// Sends a request; with `options.timeout` set, waits for the reply and returns
    /// its result (a remote failure is `Error::Remote`), else returns `Value::Null`
    /// once the transport accepted the message.
    async fn send(&self, target: &Target, request: Request, options: &SendOptions)
    -> Result<Value>;

    /// Sends a notification to `target` (whose topic is `<topic>.<priority>`).
    async fn send_notification(
        &self,
        target: &Target,
        message: NotificationMessage,
        format: NotificationFormat,
        retry: Retry,
    ) -> Result<()>;

    /// Listens for requests on a server target (topic, `topic.server` and fanout).
    async fn listen(&self, target: &Target) -> Result<Box<RequestListener>>;

    /// Listens for notifications on `(target, priority)` pairs, in `pool` if given.
    async fn listen_for_notifications(
        &self,
        targets_and_priorities: &[(Target, Priority)],
        pool: Option<&str>,
    ) -> Result<Box<NotificationListener>>;

    /// Closes connections and releases resources.
    async fn cleanup(&self) {}
}

/// Makes a driver for a URL. Registered in a [`DriverRegistry`](crate::DriverRegistry)
/// under its schemes.
#[async_trait]
pub trait DriverFactory: Send + Sync + 'static {
    /// Connects (or prepares to connect) a driver for `url`, configured by `config`.
    async fn connect(&self, url: &TransportUrl, config: &Config) -> Result<Arc<dyn Driver>>;
}
