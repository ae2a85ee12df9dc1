//! The Zaqar transport (`zaqar://`, `zaqar+https://`) of the messaging crate family:
//! RPC and notifications over the queues of OpenStack's multi-tenant queue service,
//! through its v2 HTTP API.
//!
//! - **Notifications** go to the queue `<topic>__<priority>` (names in [`naming`]), as
//!   the messaging core's notification message (the `messagingv2` envelope, or bare for
//!   the `messaging` driver). A listener claims up to `claim_limit` of them, never more
//!   than it has room for, so that listeners of one queue share its messages; it
//!   deletes each with its claim id once the handler finished (at least once) and
//!   requeues one by posting it again and deleting the claimed copy. A message that
//!   is not a notification is logged and deleted.
//! - **Pools** have queues of their own, `<topic>__<priority>__<pool>`: a pool's
//!   listeners register the pool (see [`membership`]) and the notifier posts a copy to
//!   every registered pool, reading the registrations at most every
//!   `pool_refresh_interval` seconds.
//! - **RPC**: requests go to `<exchange>__<topic>` (any server) or
//!   `<exchange>__<topic>__<server>`; servers take them with Zaqar's `pop` (take and
//!   delete in one request: at most once, as oslo acknowledges before dispatch). A
//!   server registers itself with a fanout queue of its own, to which a fanout cast is
//!   posted for every registered server; `at_least_once` refuses a message no
//!   registered server would take. Replies go to one queue per transport,
//!   `reply-<uuid>`, polled only while calls wait.
//! - Zaqar has no long polling: queues are polled every `poll_interval` while they have
//!   messages, backing off to `idle_poll_interval` while empty (see [`pacing`]).
//! - Every request carries `Client-ID` and `X-Project-ID` (and `X-Auth-Token` with
//!   Keystone, [`keystone`]); a request that fails for want of an answer or with a 5xx
//!   is tried again with exponential backoff (`retry`), a 4xx is not.
//! - Metrics (through the `metrics` facade, `driver="zaqar"`): messages posted by kind,
//!   each accepted POST's time to Zaqar's answer, and failed POST attempts.
//!
//! ```no_run
//! # async fn run() -> messaging_core::Result<()> {
//! use messaging_core::{Config, DriverRegistry};
//!
//! let mut registry = DriverRegistry::with_memory();
//! driver_zaqar::register(&mut registry);
//! let transport = registry
//!     .transport("zaqar://127.0.0.1:8888/my-project", &Config::default())
//!     .await?;
//! # Ok(()) }
//! ```

pub mod client;
mod driver;
pub mod keystone;
mod kinds;
pub mod membership;
pub mod naming;
mod options;
pub mod pacing;
mod telemetry;

use std::sync::Arc;

use async_trait::async_trait;
use messaging_core::driver::Driver;
use messaging_core::{Config, DriverFactory, DriverRegistry, Result, TransportUrl};

pub use driver::ZaqarDriver;
pub use options::{Auth, ZaqarOptions, ZaqarSection};

/// Makes [`ZaqarDriver`]s; registered for `zaqar`, `zaqar+http` and `zaqar+https`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZaqarFactory;

#[async_trait]
impl DriverFactory for ZaqarFactory {
    async fn connect(&self, url: &TransportUrl, config: &Config) -> Result<Arc<dyn Driver>> {
        Ok(Arc::new(ZaqarDriver::new(ZaqarOptions::resolve(
            url, config,
        )?)?))
    }
}

/// Registers the driver under `zaqar`, `zaqar+http` and `zaqar+https`, and its
/// section, [`ZaqarSection`].
pub fn register(registry: &mut DriverRegistry) {
    for scheme in ["zaqar", "zaqar+http", "zaqar+https"] {
        registry.register(scheme, Arc::new(ZaqarFactory));
    }
    registry.register_section::<ZaqarSection>();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn registered_as_zaqar() {
        let mut registry = DriverRegistry::new();
        register(&mut registry);
        assert_eq!(registry.schemes(), ["zaqar", "zaqar+http", "zaqar+https"]);
        // Opening a transport sends nothing yet: no server needed here.
        let transport = registry
            .transport("zaqar://127.0.0.1:1/p", &Config::default())
            .await
            .unwrap();
        assert_eq!(transport.driver().name(), "zaqar");
    }
}
