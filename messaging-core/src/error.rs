//! The one error type every public operation returns.

use std::time::Duration;

use crate::wire::failure::RemoteError;

/// Everything that can go wrong when sending, receiving or configuring.
///
/// The variants follow oslo.messaging's exceptions so a reader of either library
/// recognises them; [`Error::is_temporary`] tells whether retrying can help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `call` got no reply (or no call-monitor heartbeat) in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The server raised; carries the failure's class, module, message and traceback.
    #[error(transparent)]
    Remote(#[from] Box<RemoteError>),
    /// A compatible endpoint exists but does not have (or may not expose) the method.
    #[error("endpoint does not support RPC method {method}")]
    NoSuchMethod {
        /// The method that was asked for.
        method: String,
    },
    /// No endpoint matches the requested namespace and version.
    #[error("endpoint does not support RPC version {version}. Attempted method: {method}")]
    UnsupportedVersion {
        /// The requested version.
        version: String,
        /// The method that was asked for.
        method: String,
    },
    /// The target cannot be used for the operation (no topic, fanout call, ...).
    #[error("invalid target {target}: {reason}")]
    InvalidTarget {
        /// Why the target was refused.
        reason: String,
        /// The target, formatted.
        target: String,
    },
    /// A transport URL could not be parsed; the message names the bad part.
    #[error("invalid transport URL {url}: {reason}")]
    InvalidUrl {
        /// The URL with any password masked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No driver is registered for the URL's scheme.
    #[error("no driver for scheme {scheme:?}; registered schemes: {}", registered.join(", "))]
    UnknownDriver {
        /// The scheme of the URL.
        scheme: String,
        /// Every registered scheme, sorted.
        registered: Vec<String>,
    },
    /// The driver cannot do what was asked (e.g. RPC on a notification-only driver).
    #[error("the {driver} driver does not support {feature}")]
    Unsupported {
        /// The driver name.
        driver: String,
        /// The missing capability.
        feature: String,
    },
    /// The message could not be delivered after the allowed retries.
    #[error("message delivery failed: {0}")]
    DeliveryFailure(String),
    /// A mandatory (at-least-once) message had no queue to go to.
    #[error("message undeliverable to exchange {exchange:?} with routing key {routing_key:?}")]
    Undeliverable {
        /// The exchange it was published to.
        exchange: String,
        /// Its routing key.
        routing_key: String,
    },
    /// The message's version is above the client's `version_cap`, or a cap is set and
    /// the message has no version.
    #[error(
        "requested message version, {version} is incompatible. It needs to be equal in major version and less than or equal in minor version as the specified version cap {version_cap}."
    )]
    VersionCap {
        /// The version the message needs ("None" when unset).
        version: String,
        /// The client's cap.
        version_cap: String,
    },
    /// A version string is not `major.minor[.rev]`.
    #[error(
        "invalid version {version:?}: version must contain a major and minor integer and an optional revision integer"
    )]
    InvalidVersion {
        /// The text that failed to parse.
        version: String,
    },
    /// A value could not be turned into JSON or back.
    #[error("serialization error: {0}")]
    Serialization(String),
    /// A message on the wire is malformed; the text names the bad part.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The configuration is invalid; the text names the section and option.
    #[error("configuration error: {0}")]
    Config(String),
    /// The broker or the driver failed.
    #[error("transport error: {0}")]
    Transport(String),
    /// A server or notification listener could not start listening.
    #[error("could not listen on {target}: {reason}")]
    ListenFailure {
        /// The target it tried to listen on.
        target: String,
        /// What failed.
        reason: String,
    },
    /// `wait` on a server ran out of time.
    #[error("timed out after {0:?} waiting for the server to finish")]
    WaitTimeout(Duration),
}

impl Error {
    /// Whether retrying the same operation later can succeed (broker down, timeout).
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            Error::Timeout(_) | Error::DeliveryFailure(_) | Error::Transport(_)
        )
    }

    /// This error as the failure to listen on the target `target` names: an
    /// [`Error::ListenFailure`] as it is (a driver's names its own target, and wrapping
    /// it again would say it twice), any other error as its reason.
    pub(crate) fn listen_failure_on(self, target: impl FnOnce() -> String) -> Error {
        match self {
            failure @ Error::ListenFailure { .. } => failure,
            other => Error::ListenFailure {
                target: target(),
                reason: other.to_string(),
            },
        }
    }

    /// An [`Error::InvalidTarget`] for `target`, for drivers refusing an address.
    pub fn invalid_target(reason: impl Into<String>, target: &crate::Target) -> Self {
        Error::InvalidTarget {
            reason: reason.into(),
            target: target.to_string(),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Serialization(e.to_string())
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listen_failure_names_its_target_once() {
        let driver_said = Error::ListenFailure {
            target: "<Target topic=t, server=s>".into(),
            reason: "refused".into(),
        };
        let said = driver_said.listen_failure_on(|| unreachable!("already a listen failure"));
        assert_eq!(
            said.to_string(),
            "could not listen on <Target topic=t, server=s>: refused"
        );
        let wrapped =
            Error::Transport("broker gone".into()).listen_failure_on(|| "<Target topic=t>".into());
        assert_eq!(
            wrapped.to_string(),
            "could not listen on <Target topic=t>: transport error: broker gone"
        );
    }
}
