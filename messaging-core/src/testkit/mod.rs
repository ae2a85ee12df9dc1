//! The conformance suite: oslo.messaging's functional scenarios as async functions
//! that take a transport factory. Every driver's tests run every scenario its
//! capabilities allow, so "works on memory" and "works on RabbitMQ" mean the same.
//!
//! ```no_run
//! use messaging_core::testkit::{self, TransportFactory};
//! use messaging_core::{Config, DriverRegistry};
//! # async fn run() -> messaging_core::Result<()> {
//! let factory = TransportFactory::new(|| async {
//!     DriverRegistry::with_memory().transport("memory://", &Config::default()).await
//! });
//! testkit::rpc::call_specific_server(&factory).await?;
//! # Ok(()) }
//! ```

pub mod errors;
pub mod metrics;
pub mod notify;
pub mod rpc;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::{Result, Transport};

/// How long a scenario waits for what should happen (notifications to arrive, servers
/// to see casts). Only a bound: the wait ends as soon as the condition holds, so it can
/// be generous enough for a loaded machine and a polling transport.
const ARRIVAL_LIMIT: Duration = Duration::from_secs(30);

/// Waits until `done` holds, checking every 10 ms, for at most [`ARRIVAL_LIMIT`];
/// returns whether it held.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + ARRIVAL_LIMIT;
    loop {
        if done() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

type MakeTransport =
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<Transport>> + Send>> + Send + Sync;

/// Makes a new transport each time it is called, like a new process connecting.
#[derive(Clone)]
pub struct TransportFactory {
    make: Arc<MakeTransport>,
}

impl TransportFactory {
    /// Wraps an async function returning a fresh transport.
    pub fn new<F, Fut>(make: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Transport>> + Send + 'static,
    {
        TransportFactory {
            make: Arc::new(move || Box::pin(make())),
        }
    }

    /// A new transport.
    pub async fn transport(&self) -> Result<Transport> {
        (self.make)().await
    }
}

/// A name no other scenario run uses, so scenarios can share a broker.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Generates one `#[tokio::test]` per conformance scenario, each calling the scenario
/// with the factory expression given (evaluated per test).
///
/// ```text
/// messaging_core::conformance_tests!(my_factory());
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@each $factory;
            rpc::call_specific_server, rpc::call_server_in_group, rpc::call_different_exchanges,
            rpc::call_timeout, rpc::call_exception, rpc::call_timeout_with_concurrent_calls,
            rpc::mandatory_call, rpc::monitor_long_call, rpc::endpoint_version_namespace,
            rpc::bad_endpoint, rpc::cast_specific_server, rpc::cast_server_in_group, rpc::cast_fanout,
            rpc::multiple_servers_matrix, rpc::server_stop_drains_in_flight, rpc::server_restart,
            rpc::concurrency_limit, rpc::serializer_round_trip, rpc::private_methods_refused,
            rpc::ping_endpoint, rpc::version_cap, rpc::context_reaches_endpoint,
            notify::simple, notify::multiple_topics, notify::multiple_listeners_share,
            notify::independent_topics, notify::all_categories, notify::batch,
            notify::requeue, notify::pools, notify::filter, notify::two_exchanges,
            notify::priority_subscription, notify::listener_restart
        );
    };
    (@each $factory:expr; $($module:ident :: $scenario:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let factory = $factory;
                $crate::testkit::$module::$scenario(&factory).await.unwrap();
            }
        )*
    };
}
