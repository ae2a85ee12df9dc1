//! Core of the messaging crate family: RPC (call, cast, fanout) and notifications over
//! pluggable transports chosen by URL, wire compatible with OpenStack's oslo.messaging.
#![warn(missing_docs)]

pub mod config;
pub mod context;
pub mod error;
pub mod target;
pub mod url;
pub mod version;
pub mod wire;

pub use config::Config;
pub use context::Context;
pub use error::{Detail, Error, ErrorKind, Result};
pub use target::Target;
pub use url::{TransportHost, TransportUrl};
pub use version::{Version, version_is_compatible};
pub use wire::failure::RemoteError;
pub mod driver;
pub mod memory;
pub mod notify;
pub mod registry;
pub mod rpc;
pub mod secrets;
pub mod serializer;
mod service;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod transport;

pub use driver::{Capabilities, Driver, Retry};
pub use notify::{
    Notification, NotificationFilter, NotificationListener, NotificationResult, Notifier, Priority,
};
pub use registry::{DriverFactory, DriverRegistry};
pub use rpc::{AccessPolicy, Endpoint, NoArgs, RpcClient, RpcServer};
pub use serializer::{NoOpSerializer, Serializer};
pub use transport::Transport;
