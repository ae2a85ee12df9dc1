//! [`ReplyPath`]: how to answer a message that reached this node.

use std::sync::Arc;

use bytes::Bytes;
use messaging_core::{Error, Result};
use zeromq::{RouterSendHalf, SocketSend};

use crate::frame::Frame;
use crate::link::Link;

/// The way back to a message's sender.
#[derive(Clone)]
pub enum ReplyPath {
    /// Directly: through this node's ROUTER to the sender's DEALER.
    Router {
        /// The ROUTER's send half.
        send: RouterSendHalf,
        /// The sender's ZeroMQ identity.
        identity: Bytes,
    },
    /// Through the proxy, to the sender's node id.
    Proxy {
        /// This node's link to the proxy.
        link: Arc<Link>,
        /// The sender's node id.
        from: Bytes,
        /// How long an answer may wait for room in the link's queue.
        timeout: std::time::Duration,
    },
    /// Nobody to answer (fanout through the proxy's PUB).
    None,
}

impl ReplyPath {
    /// Sends `answer` back.
    pub async fn answer(&self, answer: Frame) -> Result<()> {
        match self {
            ReplyPath::Router { send, identity } => send
                .clone()
                .send(answer.into_message([identity.clone()]))
                .await
                .map_err(|e| Error::Transport(format!("answer not sent: {e}"))),
            ReplyPath::Proxy {
                link,
                from,
                timeout,
            } => {
                link.send(
                    answer.into_message([from.clone()]),
                    tokio::time::Instant::now() + *timeout,
                )
                .await
            }
            ReplyPath::None => Ok(()),
        }
    }
}
