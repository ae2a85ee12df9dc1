//! The driver-level families of messaging-core's
//! [`catalog`](messaging_core::telemetry::catalog), labelled `driver="zaqar"`: the
//! messages the driver posts (requests, replies, notifications; not the memberships
//! it keeps, nor the copy a requeue posts again).
//!
//! - [`catalog::PUBLISHES`]: each message of a POST Zaqar accepted.
//! - [`catalog::PUBLISH_CONFIRM_SECONDS`]: the accepted attempt's time, from sending
//!   the request to Zaqar's answer (backoff between attempts not included).
//! - [`catalog::PUBLISH_FAILURES`] (`reason="error"`): each attempt that failed, tried
//!   again or not: a Zaqar that keeps failing shows while the retries go on.
//!
//! Label values are literals, so recording allocates nothing.

use messaging_core::telemetry::catalog;

/// What a posted message is: the `kind` label of [`catalog::PUBLISHES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Publish {
    /// A request (call, cast or fanout).
    Rpc,
    /// A reply to a call.
    Reply,
    /// A notification (or its copy for a pool).
    Notification,
}

/// Zaqar accepted `messages` messages of `kind`, its answer `seconds` after the request
/// went out.
pub(crate) fn posted(kind: Publish, messages: usize, seconds: f64) {
    let messages = messages as u64;
    match kind {
        Publish::Rpc => metrics::counter!(catalog::PUBLISHES, "driver" => "zaqar", "kind" => "rpc")
            .increment(messages),
        Publish::Reply => {
            metrics::counter!(catalog::PUBLISHES, "driver" => "zaqar", "kind" => "reply")
                .increment(messages)
        }
        Publish::Notification => metrics::counter!(
            catalog::PUBLISHES, "driver" => "zaqar", "kind" => "notification"
        )
        .increment(messages),
    }
    metrics::histogram!(catalog::PUBLISH_CONFIRM_SECONDS, "driver" => "zaqar").record(seconds);
}

/// An attempt to post failed (no answer, or an answer that is not a success).
pub(crate) fn failed() {
    metrics::counter!(catalog::PUBLISH_FAILURES, "driver" => "zaqar", "reason" => "error")
        .increment(1);
}
