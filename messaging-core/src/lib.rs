//! Core of the messaging crate family: RPC (call, cast, fanout) and notifications over
//! pluggable transports chosen by URL, wire compatible with OpenStack's oslo.messaging.
#![warn(missing_docs)]

pub mod context;
pub mod error;
pub mod target;
pub mod version;
pub mod wire;

pub use context::Context;
pub use error::{Error, Result};
pub use target::Target;
pub use version::{Version, version_is_compatible};
pub use wire::failure::RemoteError;
