//! [`ReplyPath`]: how to answer a message that reached this node.

use std::sync::Arc;

use bytes::Bytes;
use messaging_core::{Error, Result};
use zeromq::{RouterSendHalf, SocketSend};

use crate::frame::{Frame, Kind};
use crate::link::Link;
use crate::telemetry;

/// How long an answer waits for room in a direct caller's connection.
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

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
    /// Who the message came from, for logs.
    pub fn sender(&self) -> String {
        match self {
            ReplyPath::Router { identity, .. } => String::from_utf8_lossy(identity).into_owned(),
            ReplyPath::Proxy { from, .. } => String::from_utf8_lossy(from).into_owned(),
            ReplyPath::None => "the proxy's publisher".into(),
        }
    }

    /// Sends `answer` back; a reply is counted as a publish (or a failed one).
    pub async fn answer(&self, answer: Frame) -> Result<()> {
        let kind = answer.kind;
        let sent = self.send(answer).await;
        if kind == Kind::Reply {
            telemetry::sent(kind, &sent);
        }
        sent
    }

    /// [`answer`](Self::answer), uncounted.
    async fn send(&self, answer: Frame) -> Result<()> {
        match self {
            ReplyPath::Router { send, identity } => {
                // A caller that stopped reading must not hold up answers to others
                // (the ROUTER waits for room in that caller's queue).
                let mut send = send.clone();
                let sending = send.send(answer.into_message([identity.clone()]));
                let mut sending = std::pin::pin!(sending);
                // Usually done at once: no timer needed then.
                if let Some(sent) = futures::FutureExt::now_or_never(&mut sending) {
                    return sent.map_err(not_sent);
                }
                match tokio::time::timeout(ANSWER_TIMEOUT, sending).await {
                    Ok(sent) => sent.map_err(not_sent),
                    Err(_) => Err(Error::Timeout(format!(
                        "answer to {} dropped: its connection stayed full for {ANSWER_TIMEOUT:?}",
                        String::from_utf8_lossy(identity)
                    ).into())),
                }
            }
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

/// An answer the ROUTER could not send: its connection is gone.
fn not_sent(e: zeromq::ZmqError) -> Error {
    let message = format!("answer not sent: {e}");
    Error::transport(messaging_core::ErrorKind::ConnectionLost, message, e)
}
