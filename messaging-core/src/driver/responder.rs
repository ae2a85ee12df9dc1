//! [`ReplyResponder`]: answers a call through a driver's one way of publishing a reply.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::contract::Responder;
use crate::wire::Reply;
use crate::{RemoteError, Result};

/// How a driver sends a reply (or heartbeat) to a caller: the one operation a driver
/// writes for the server side of calls. The address is what a request names its
/// caller by: the reply queue's name for drivers with reply queues, a connection for
/// a driver that answers on the way the request came.
#[async_trait]
pub trait PublishReply: Send + Sync + 'static {
    /// Where a reply goes.
    type Address: Send + Sync + 'static;

    /// Publishes `reply` to `to`. A caller known to be gone may be an `Ok` (nothing
    /// to do) or an error; the server logs errors and carries on.
    async fn publish_reply(&self, to: &Self::Address, reply: &Reply) -> Result<()>;
}

/// The [`Responder`] of one call: builds the reply or heartbeat for the call's
/// `msg_id` and hands it to the driver's [`PublishReply`].
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::{Arc, Mutex};
/// use messaging_core::driver::{PublishReply, ReplyResponder, Responder};
/// use messaging_core::wire::Reply;
///
/// /// A driver's reply path that keeps what it is given.
/// #[derive(Default)]
/// struct Kept(Mutex<Vec<(String, Reply)>>);
///
/// #[async_trait::async_trait]
/// impl PublishReply for Kept {
///     type Address = String;
///     async fn publish_reply(&self, to: &String, reply: &Reply) -> messaging_core::Result<()> {
///         self.0.lock().unwrap().push((to.clone(), reply.clone()));
///         Ok(())
///     }
/// }
///
/// let kept = Arc::new(Kept::default());
/// let responder = ReplyResponder::new(kept.clone(), "reply_q1".to_string(), "m1".to_string());
/// responder.heartbeat().await.unwrap();
/// responder.reply(Ok(serde_json::json!(42))).await.unwrap();
/// let sent = kept.0.lock().unwrap();
/// assert_eq!(sent.len(), 2);
/// assert_eq!(sent[1].0, "reply_q1");
/// assert_eq!(sent[1].1.result, 42);
/// # });
/// ```
pub struct ReplyResponder<P: PublishReply> {
    publisher: Arc<P>,
    to: P::Address,
    msg_id: String,
}

impl<P: PublishReply> ReplyResponder<P> {
    /// Answers the call `msg_id` at `to` through `publisher`.
    pub fn new(publisher: Arc<P>, to: P::Address, msg_id: String) -> Self {
        ReplyResponder {
            publisher,
            to,
            msg_id,
        }
    }
}

#[async_trait]
impl<P: PublishReply> Responder for ReplyResponder<P> {
    async fn reply(&self, outcome: std::result::Result<Value, RemoteError>) -> Result<()> {
        let reply = Reply::new(self.msg_id.clone(), outcome);
        self.publisher.publish_reply(&self.to, &reply).await
    }

    async fn heartbeat(&self) -> Result<()> {
        let heartbeat = Reply::heartbeat(self.msg_id.clone());
        self.publisher.publish_reply(&self.to, &heartbeat).await
    }
}
