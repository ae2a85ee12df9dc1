//! Core of the messaging crate family: RPC (call, cast, fanout) and notifications over
//! pluggable transports chosen by URL, wire compatible with OpenStack's oslo.messaging.
//!
//! Layers, lowest first (each uses only those before it):
//!
//! - [`wire`]: oslo's message formats, key for key.
//! - [`driver`]: the contract a transport driver implements ([`Driver`],
//!   [`DriverFactory`], [`Capabilities`]) and the kit drivers are built from (reply
//!   queues, request intake, responders, duplicate filter, channel listeners).
//! - [`config`] and [`registry`]: oslo's options, each driver's section registered with
//!   the [`DriverRegistry`] beside its factory.
//! - [`rpc`] and [`notify`]: the user API, which reaches drivers only through the
//!   contract; [`Transport`] ties a driver to its URL and configuration.
//! - [`memory`]: the in-process driver, built from the kit as the others are.
//! - [`telemetry`]: metrics (oslo's RPC families, through the `metrics` facade and to
//!   oslo.metrics), spans, and W3C trace context in the message context.
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
pub use error::failure::RemoteError;
pub use error::{Detail, Error, ErrorKind, Result};
pub use target::Target;
pub use url::{TransportHost, TransportUrl};
pub use version::{Version, version_is_compatible};
pub mod driver;
pub mod memory;
pub mod notify;
pub mod registry;
pub mod rpc;
pub mod secrets;
pub mod serializer;
mod service;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod transport;

pub use driver::{Capabilities, Driver, DriverFactory, Retry};
pub use notify::{
    Notification, NotificationFilter, NotificationListener, NotificationResult, Notifier, Priority,
};
pub use registry::DriverRegistry;
pub use rpc::{AccessPolicy, Endpoint, NoArgs, RpcClient, RpcServer};
pub use serializer::{NoOpSerializer, Serializer};
pub use transport::Transport;
