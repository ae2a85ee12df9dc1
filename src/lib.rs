//! RPC (call, cast, fanout) and notifications over pluggable transports chosen by URL,
//! wire compatible with OpenStack's Python oslo.messaging.
//!
//! This facade holds what a service uses: configuration ([`Config`]), transports
//! ([`registry()`] returns a [`DriverRegistry`] with every enabled driver registered),
//! RPC ([`RpcClient`], [`RpcServer`], [`Endpoint`]) and notifications ([`Notifier`],
//! [`NotificationListener`]), and, behind the cargo features `rabbit`, `kafka`, `zmq`
//! and `zaqar`, the driver crates.
//!
//! Writing a driver is done against [`messaging_core`]: its `driver` module holds the
//! contract (`Driver`, `DriverFactory`) and the kit every driver here is built from
//! (reply queues, request intake, responders, channel listeners). The wire formats are
//! in `messaging_core::wire`.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use messaging::{Config, Context, Endpoint, RemoteError, RpcClient, RpcServer, Target};
//! use serde_json::json;
//!
//! let cfg = Config::from_ini_str("[DEFAULT]\ntransport_url = memory://\n").unwrap();
//! let rpc = messaging::registry().rpc_transport(&cfg).await.unwrap();
//!
//! let api = Endpoint::new().method("add", |_ctx: Context, args: serde_json::Map<String, serde_json::Value>| async move {
//!     Ok::<_, RemoteError>(args["a"].as_i64().unwrap_or(0) + args["b"].as_i64().unwrap_or(0))
//! });
//! let server = RpcServer::new(&rpc, Target::topic("calc").server("host1")).endpoint(api).start().await.unwrap();
//! let sum: i64 = RpcClient::new(&rpc, Target::topic("calc")).call(&Context::new(), "add", json!({"a": 1, "b": 2})).await.unwrap();
//! assert_eq!(sum, 3);
//! server.stop().await;
//! server.wait().await.unwrap();
//! # });
//! ```

pub use messaging_core::{
    AccessPolicy, Capabilities, Config, Context, Detail, DriverRegistry, Endpoint, Error,
    ErrorKind, NoArgs, NoOpSerializer, Notification, NotificationFilter, NotificationListener,
    NotificationResult, Notifier, Priority, RemoteError, Result, Retry, RpcClient, RpcServer,
    Serializer, Target, Transport, TransportHost, TransportUrl, Version, config, context, error,
    notify, rpc, secrets, serializer, target, telemetry, url, version, version_is_compatible,
};

#[cfg(feature = "opentelemetry")]
pub mod opentelemetry;
#[cfg(feature = "prometheus")]
pub mod prometheus;

#[cfg(feature = "kafka")]
pub use driver_kafka;
#[cfg(feature = "rabbit")]
pub use driver_rabbit;
#[cfg(feature = "zaqar")]
pub use driver_zaqar;
#[cfg(feature = "zmq")]
pub use driver_zmq;

/// A registry with every driver this build enables: `memory`/`fake` always,
/// `rabbit`/`amqp` with the `rabbit` feature, `kafka` with the `kafka` feature,
/// `zmq` (`zmq+redis`, `zmq+static`, `zmq+dummy`) with the `zmq` feature, and `zaqar`
/// (`zaqar+http`, `zaqar+https`) with the `zaqar` feature.
pub fn registry() -> DriverRegistry {
    #[allow(unused_mut)]
    let mut registry = DriverRegistry::with_memory();
    #[cfg(feature = "rabbit")]
    driver_rabbit::register(&mut registry);
    #[cfg(feature = "kafka")]
    driver_kafka::register(&mut registry);
    #[cfg(feature = "zmq")]
    driver_zmq::register(&mut registry);
    #[cfg(feature = "zaqar")]
    driver_zaqar::register(&mut registry);
    registry
}
