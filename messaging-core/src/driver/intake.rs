//! [`RequestIntake`]: what a server's consumer does with each request it received.

use std::sync::Arc;

use super::contract::{IncomingRequest, Responder};
use super::dedup::DuplicateFilter;
use super::responder::{PublishReply, ReplyResponder};
use crate::wire::Request;

/// Turns a server's received requests into what the server takes: a request seen
/// lately (by `_unique_id`, as oslo's listener remembers them) is dropped, and a call
/// gets a [`ReplyResponder`] to its reply queue.
///
/// Requests are acknowledged by the driver before they come here (oslo's at-most-once
/// execution), so a repeat is a redelivery after a lost ack.
///
/// ```
/// # use std::sync::Arc;
/// use messaging_core::driver::{PublishReply, RequestIntake};
/// use messaging_core::wire::{Reply, Request};
/// # struct Nowhere;
/// # #[async_trait::async_trait]
/// # impl PublishReply for Nowhere {
/// #     type Address = String;
/// #     async fn publish_reply(&self, _: &String, _: &Reply) -> messaging_core::Result<()> { Ok(()) }
/// # }
/// let mut intake = RequestIntake::new(Arc::new(Nowhere));
/// let request = Request::new("ping", serde_json::Map::new(), messaging_core::Context::new());
/// let repeat = request.clone();
/// assert!(intake.admit(request).is_some());
/// assert!(intake.admit(repeat).is_none(), "the same _unique_id again is dropped");
/// ```
pub struct RequestIntake<P: PublishReply<Address = String>> {
    replies: Arc<P>,
    seen: DuplicateFilter,
}

impl<P: PublishReply<Address = String>> RequestIntake<P> {
    /// An intake answering calls through `replies`, which publishes to a reply queue
    /// named by the request's `_reply_q`.
    pub fn new(replies: Arc<P>) -> Self {
        RequestIntake {
            replies,
            seen: DuplicateFilter::default(),
        }
    }

    /// The request as the server takes it, with its responder if it is a call; `None`
    /// for a repeat of a request taken lately.
    pub fn admit(&mut self, request: Request) -> Option<IncomingRequest> {
        if let Some(id) = &request.unique_id
            && self.seen.check_and_remember(id)
        {
            tracing::debug!(unique_id = %id, "duplicate request dropped");
            return None;
        }
        let responder = request.reply.as_ref().map(|address| {
            Box::new(ReplyResponder::new(
                self.replies.clone(),
                address.reply_q.clone(),
                address.msg_id.clone(),
            )) as Box<dyn Responder>
        });
        Some(IncomingRequest {
            request: request.into(),
            responder,
        })
    }
}
