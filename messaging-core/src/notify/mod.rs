//! Notifications: a [`Notifier`] publishes events; a [`NotificationListener`]
//! consumes them with per-priority handlers, filters, batches and pools.

pub mod filter;
pub mod listener;
pub mod notifier;
pub mod routing;
pub mod sink;

pub use crate::wire::priority::Priority;
pub use filter::NotificationFilter;
pub use listener::{
    Metadata, Notification, NotificationEndpoint, NotificationListener,
    NotificationListenerBuilder, NotificationResult,
};
pub use notifier::Notifier;
pub use routing::RoutingConfig;
pub use sink::{SentNotification, Sink, TestNotifications};
