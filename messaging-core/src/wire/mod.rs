//! The wire formats every driver shares: envelope, RPC request, reply, failure,
//! notification message. Their JSON is oslo.messaging's, key for key.

pub mod context;
pub mod envelope;
/// oslo's failure JSON; it lives with the error type, whose `Remote` variant holds one.
pub use crate::error::failure;
pub mod notification;
pub mod priority;
pub mod reply;
pub mod request;

pub use context::ContextPacking;
pub use notification::NotificationMessage;
pub use priority::Priority;
pub use reply::Reply;
pub use request::{ReplyAddress, Request};
