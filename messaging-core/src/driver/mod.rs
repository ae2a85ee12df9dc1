//! The driver contract and the kit drivers are built from.
//!
//! A driver moves already-built messages: the RPC client and server, the notifier and
//! the listener of this crate build and interpret them, so every driver gets the same
//! semantics. Drivers are used behind `Arc<dyn Driver>`, made by a [`DriverFactory`]
//! that a [`DriverRegistry`](crate::DriverRegistry) holds under URL schemes.
//!
//! What a driver writes is how to speak its broker; the rest is in this module, for
//! every driver to compose:
//!
//! | piece | what it does |
//! |---|---|
//! | [`replies`] | a caller's reply queue ([`ReplyInbox`]): new `msg_id`, reply address, waiting with the call and call-monitor timeouts, replies handed to their calls, a refused call as [`CallOutcome::Refused`] |
//! | [`responder`] | [`ReplyResponder`]: a [`Responder`] over a driver's one "publish a reply" operation ([`PublishReply`]) |
//! | [`intake`] | [`RequestIntake`]: a server's received requests with repeats dropped and each call given its responder |
//! | [`dedup`] | [`DuplicateFilter`]: oslo's memory of recent `_unique_id`s |
//! | [`listener`] | [`ChannelListener`]: a [`Listener`] over a channel a driver's consumers fill |
//!
//! A new driver implements [`Driver`] and [`DriverFactory`], and registers the factory
//! (and its configuration section) with the registry; it needs nothing else from this
//! crate's internals.

mod contract;
pub mod dedup;
pub mod intake;
pub mod listener;
pub mod replies;
pub mod responder;

pub use contract::{
    Capabilities, Disposition, Driver, DriverFactory, IncomingNotification, IncomingRequest,
    Listener, NotificationFormat, NotificationListener, ReceivedRequest, RequestListener,
    Responder, Retry, SendOptions, Settle,
};
pub use dedup::DuplicateFilter;
pub use intake::RequestIntake;
pub use listener::{ChannelListener, MessageSource};
pub use replies::{CallOutcome, PendingReply, ReplyInbox, ReplyWaiters, deadline_after};
pub use responder::{PublishReply, ReplyResponder};
