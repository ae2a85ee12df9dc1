//! The driver-level families of messaging-core's
//! [`catalog`](messaging_core::telemetry::catalog), labelled `driver="zmq"`.
//!
//! - [`catalog::PUBLISHES`]: every message handed to a peer's connection (a call tried
//!   on two nodes counts twice, a fanout once per node, a notification once per pool),
//!   and every reply sent back; acks, refusals and `T` answers are not messages.
//! - [`catalog::PUBLISH_FAILURES`]: every attempt that could not be handed over or, for
//!   what the receiver acks, was not acked in time: `timeout` when a queue or window
//!   stayed full or the ack did not come, `error` otherwise.
//! - [`catalog::ZMQ_PEERS`]: the connections of the transport's sockets, outgoing
//!   (links) and incoming (its ROUTER), from the sockets' monitors.
//! - [`catalog::ZMQ_QUEUE_DEPTH`]: messages in the links' send queues, and
//!   notifications the outbox keeps until a listener takes them.
//!
//! The gauges are moved by increments, never set: the transports of one process share
//! the series, each adding its own part, and taking it away when it closes. Label
//! values are literals, so recording allocates nothing.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use messaging_core::telemetry::catalog;
use messaging_core::{Error, Result};
use zeromq::SocketEvent;
use zeromq::util::PeerIdentity;

use crate::frame::Kind;

/// Counts a message of `kind` that was handed over (`Ok`) or not.
pub(crate) fn sent(kind: Kind, outcome: &Result<()>) {
    match outcome {
        Ok(()) => published(kind),
        Err(e) => failed(e),
    }
}

/// Counts a message of `kind` handed to a peer's connection (answers other than
/// replies are not counted).
pub(crate) fn published(kind: Kind) {
    match kind {
        Kind::Call | Kind::Cast | Kind::ConfirmedCast | Kind::Fanout => {
            metrics::counter!(catalog::PUBLISHES, "driver" => "zmq", "kind" => "rpc").increment(1)
        }
        Kind::Reply => {
            metrics::counter!(catalog::PUBLISHES, "driver" => "zmq", "kind" => "reply").increment(1)
        }
        Kind::Notify => metrics::counter!(
            catalog::PUBLISHES, "driver" => "zmq", "kind" => "notification"
        )
        .increment(1),
        Kind::Ack | Kind::Refused | Kind::Taken => {}
    }
}

/// Counts an attempt that failed with `error`: `timeout` for a time-out, else `error`.
pub(crate) fn failed(error: &Error) {
    if matches!(error, Error::Timeout(_)) {
        timed_out();
    } else {
        metrics::counter!(catalog::PUBLISH_FAILURES, "driver" => "zmq", "reason" => "error")
            .increment(1);
    }
}

/// Counts an attempt that timed out (no room, or no ack in time).
pub(crate) fn timed_out() {
    metrics::counter!(catalog::PUBLISH_FAILURES, "driver" => "zmq", "reason" => "timeout")
        .increment(1);
}

/// Messages waiting in one outgoing queue: a count of its own (which the link also
/// reads, to let a sender bypass an empty queue) mirrored in [`catalog::ZMQ_QUEUE_DEPTH`].
/// Dropped, it takes what is still counted out of the gauge: messages left in a queue
/// that is gone wait no more.
pub(crate) struct Depth {
    count: AtomicUsize,
    /// Resolved once: moving a handle costs no lookup per message.
    gauge: metrics::Gauge,
}

impl Default for Depth {
    fn default() -> Depth {
        Depth {
            count: AtomicUsize::new(0),
            gauge: metrics::gauge!(catalog::ZMQ_QUEUE_DEPTH, "driver" => "zmq"),
        }
    }
}

impl Depth {
    /// `n` more messages wait.
    pub(crate) fn add(&self, n: usize) {
        self.count.fetch_add(n, Ordering::AcqRel);
        self.gauge.increment(n as f64);
    }

    /// `n` messages left the queue (sent, refused, expired or given up).
    pub(crate) fn sub(&self, n: usize) {
        self.count.fetch_sub(n, Ordering::AcqRel);
        self.gauge.decrement(n as f64);
    }

    /// How many wait.
    pub(crate) fn load(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

impl Drop for Depth {
    fn drop(&mut self) {
        let left = *self.count.get_mut();
        if left > 0 {
            self.gauge.decrement(left as f64);
        }
    }
}

/// The peers one socket is connected to, counted in [`catalog::ZMQ_PEERS`]; dropped
/// (the socket gone, or the task watching it aborted with its transport), it takes
/// them out of the gauge again.
struct Peers {
    connected: HashSet<PeerIdentity>,
    gauge: metrics::Gauge,
}

impl Peers {
    fn connected(&mut self, peer: PeerIdentity) {
        if self.connected.insert(peer) {
            self.gauge.increment(1.0);
        }
    }

    fn disconnected(&mut self, peer: &PeerIdentity) {
        if self.connected.remove(peer) {
            self.gauge.decrement(1.0);
        }
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        if !self.connected.is_empty() {
            self.gauge.decrement(self.connected.len() as f64);
        }
    }
}

/// Follows a socket's monitor (made before it connects or binds, so that no event is
/// missed) and counts its peers in [`catalog::ZMQ_PEERS`] until the socket is gone or
/// the task running this is aborted. A peer is counted once however often it is
/// reported, and only what was counted is taken away.
pub(crate) async fn count_peers(mut events: futures::channel::mpsc::Receiver<SocketEvent>) {
    let mut peers = Peers {
        connected: HashSet::new(),
        gauge: metrics::gauge!(catalog::ZMQ_PEERS, "driver" => "zmq"),
    };
    while let Some(event) = events.next().await {
        match event {
            SocketEvent::Connected(_, peer) | SocketEvent::Accepted(_, peer) => {
                peers.connected(peer)
            }
            SocketEvent::Disconnected(peer) => peers.disconnected(&peer),
            _ => {}
        }
    }
}
