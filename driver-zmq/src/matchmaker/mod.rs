//! The name service: which nodes serve a destination.
//!
//! A node registers one [`Member`] per destination it listens on and renews the
//! registrations every `zmq_target_update` seconds; a registration lives
//! `zmq_target_expire` seconds, so a node that died disappears from discovery by itself.
//! Senders look destinations up (and look again while nobody is found, within their
//! timeout).
//!
//! - [`InProcess`] (`zmq+dummy://`): one table per process, for tests and all-in-one
//!   deployments;
//! - [`StaticMap`] (`zmq+static://`): a fixed map from configuration
//!   (`zmq_static_targets`), no service needed; registrations are ignored;
//! - [`Redis`] (`zmq+redis://host:port`): a shared Redis.

mod memory;
mod redis;
mod static_map;

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use messaging_core::Result;

pub use self::memory::InProcess;
pub use self::redis::Redis;
pub use self::static_map::StaticMap;
use crate::destination::{Destination, Member};

/// A name service.
#[async_trait]
pub trait Matchmaker: Send + Sync + Debug {
    /// Registers (or renews) `member` under `key` for `ttl` (`None`: until
    /// unregistered).
    async fn register(
        &self,
        key: &Destination,
        member: &Member,
        ttl: Option<Duration>,
    ) -> Result<()>;

    /// Removes a registration.
    async fn unregister(&self, key: &Destination, member: &Member) -> Result<()>;

    /// The live members registered under `key`.
    async fn lookup(&self, key: &Destination) -> Result<Vec<Member>>;
}
