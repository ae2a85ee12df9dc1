//! The one error type every public operation returns, with what kind of failure it
//! is ([`ErrorKind`]) and, where a library below failed, that library's error.
//!
//! A caller branches on [`Error::kind`] and reaches the underlying error (a
//! `lapin::Error`, `rdkafka::error::KafkaError`, `redis::RedisError`,
//! `std::io::Error`, ...) through [`std::error::Error::source`]:
//!
//! ```
//! use std::error::Error as _;
//! use messaging_core::{Detail, Error, ErrorKind};
//!
//! # fn send() -> Result<(), Error> {
//! #     let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
//! #     Err(Error::DeliveryFailure(
//! #         Detail::new(ErrorKind::Unreachable, "cannot connect to 127.0.0.1:1").with_source(refused),
//! #     ))
//! # }
//! match send() {
//!     Err(e) if e.kind() == ErrorKind::RefusedCredentials => eprintln!("check the password: {e}"),
//!     Err(e) if e.kind() == ErrorKind::Unreachable => {
//!         // The library's own error is the source, for whoever needs its details.
//!         let io = e.source().and_then(|s| s.downcast_ref::<std::io::Error>());
//!         assert_eq!(io.map(|io| io.kind()), Some(std::io::ErrorKind::ConnectionRefused));
//!     }
//!     Err(e) if e.is_temporary() => eprintln!("try again later: {e}"),
//!     Err(e) => eprintln!("{e}"),
//!     Ok(()) => {}
//! }
//! ```

pub mod failure;

use std::error::Error as StdError;
use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use self::failure::RemoteError;

/// What kind of failure an [`Error`] is, for callers that act on it (retry, ask for
/// other credentials, alert an operator) without matching message texts.
///
/// New kinds may be added: match with a wildcard arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The broker (or the Redis matchmaker) refused the login: wrong user name or
    /// password, or an authentication mechanism it does not accept.
    RefusedCredentials,
    /// Nothing answered at the address: connection refused, no route to the host, a
    /// name that does not resolve, no broker up.
    Unreachable,
    /// The TLS handshake failed: a certificate that does not verify, a peer that does
    /// not speak TLS, a refused client certificate.
    Tls,
    /// The broker refused an operation on a working connection: access refused to a
    /// vhost or resource, a precondition failed (a queue declared otherwise), something
    /// not found, a message no queue takes.
    RefusedByBroker,
    /// An established connection (or channel) was closed or reset under the operation.
    ConnectionLost,
    /// The operation ran out of time.
    Timeout,
    /// Another I/O failure (a local file, a socket error not covered above).
    Io,
    /// The configuration or the transport URL is invalid.
    Config,
    /// The server raised, or has no such method or version.
    Remote,
    /// A target, version or message the operation cannot use.
    InvalidInput,
    /// The driver cannot do what was asked.
    Unsupported,
    /// None of the above, or not known (an error made from text alone).
    Other,
}

impl ErrorKind {
    /// A short lowercase name, as in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RefusedCredentials => "refused credentials",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Tls => "TLS",
            ErrorKind::RefusedByBroker => "refused by the broker",
            ErrorKind::ConnectionLost => "connection lost",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Io => "I/O",
            ErrorKind::Config => "configuration",
            ErrorKind::Remote => "remote",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Other => "other",
        }
    }

    /// The kind of an I/O error: refused, unreachable and unresolvable addresses are
    /// [`ErrorKind::Unreachable`], resets and aborts [`ErrorKind::ConnectionLost`],
    /// time-outs [`ErrorKind::Timeout`], the rest [`ErrorKind::Io`].
    pub fn of_io(e: &std::io::Error) -> ErrorKind {
        use std::io::ErrorKind as Io;
        match e.kind() {
            Io::ConnectionRefused
            | Io::HostUnreachable
            | Io::NetworkUnreachable
            | Io::AddrNotAvailable
            | Io::NotConnected => ErrorKind::Unreachable,
            Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe | Io::UnexpectedEof => {
                ErrorKind::ConnectionLost
            }
            Io::TimedOut => ErrorKind::Timeout,
            // A name that does not resolve: std reports no kind of its own for it.
            _ if e.to_string().contains("failed to lookup address") => ErrorKind::Unreachable,
            _ => ErrorKind::Io,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The source of a [`Detail`]: any error of a library below, sendable across tasks.
pub type BoxedSource = Box<dyn StdError + Send + Sync + 'static>;

/// What an [`Error::Timeout`], [`Error::DeliveryFailure`], [`Error::Transport`],
/// [`Error::Config`] or [`Error::ListenFailure`] says: its kind, its message, and the
/// error of the library below that caused it, if any.
///
/// The message is what `Display` prints, so it reads as it always has; it already
/// quotes the source's text (with any password removed). A `Detail` made from text
/// alone (`"...".into()`, `format!(..).into()`) has kind [`ErrorKind::Other`], and
/// dereferences to its message, so `detail.contains(..)` works as on a `String`.
///
/// `Debug` shows the source's type, not its text: a library's error may quote what it
/// was given, a password included.
///
/// ```
/// use messaging_core::{Detail, ErrorKind};
///
/// let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// let detail = Detail::new(ErrorKind::Unreachable, format!("cannot connect to h:1: {io}"))
///     .with_source(io);
/// assert_eq!(detail.kind(), ErrorKind::Unreachable);
/// assert!(detail.starts_with("cannot connect"));
/// assert!(detail.source().unwrap().is::<std::io::Error>());
/// ```
pub struct Detail {
    kind: ErrorKind,
    message: String,
    source: Option<BoxedSource>,
    /// The source's type, for `Debug` (which must not print the source's text).
    source_type: &'static str,
}

impl Detail {
    /// A detail of kind `kind` saying `message`, without a source.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Detail {
        Detail {
            kind,
            message: message.into(),
            source: None,
            source_type: "",
        }
    }

    /// This detail with `source` as the error that caused it.
    pub fn with_source<E: StdError + Send + Sync + 'static>(mut self, source: E) -> Detail {
        self.source_type = std::any::type_name::<E>();
        self.source = Some(Box::new(source));
        self
    }

    /// This detail with `source` as its cause unless `secret` shows in the text or
    /// `Debug` output of `source` or of any error in its chain; then the source is
    /// a [`Redacted`] copy of its text with `secret` replaced by `****`. For errors
    /// of libraries that were handed a password (a connection URL, a login).
    pub fn with_source_hiding<E: StdError + Send + Sync + 'static>(
        self,
        source: E,
        secret: &str,
    ) -> Detail {
        if secret.is_empty() || !chain_shows(&source, secret) {
            return self.with_source(source);
        }
        let redacted = Redacted {
            text: source.to_string().replace(secret, "****"),
        };
        self.with_source(redacted)
    }

    /// This detail with the kind `kind`.
    pub fn with_kind(mut self, kind: ErrorKind) -> Detail {
        self.kind = kind;
        self
    }

    /// A detail saying `message` about `cause`: it keeps the kind of `cause` and the
    /// error underneath it, as a retry loop that gives up wraps its last failure.
    pub fn wrapping(message: impl Into<String>, cause: Error) -> Detail {
        let kind = cause.kind();
        let detail = Detail::from(cause);
        Detail {
            kind,
            message: message.into(),
            ..detail
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, as `Display` prints it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error that caused this, if a library below failed.
    pub fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }

    /// Takes the source out, e.g. to attach it to another error.
    pub fn into_source(self) -> Option<BoxedSource> {
        self.source
    }
}

/// Whether `secret` shows in the text or `Debug` output of `error` or its sources.
fn chain_shows(error: &(dyn StdError + 'static), secret: &str) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.to_string().contains(secret) || format!("{e:?}").contains(secret) {
            return true;
        }
        next = e.source();
    }
    false
}

impl From<String> for Detail {
    fn from(message: String) -> Detail {
        Detail::new(ErrorKind::Other, message)
    }
}

impl From<&str> for Detail {
    fn from(message: &str) -> Detail {
        Detail::new(ErrorKind::Other, message)
    }
}

/// An error as the detail of another: its kind, its text as the message, and as the
/// source the error underneath it (or the error itself when it has no detail).
impl From<Error> for Detail {
    fn from(error: Error) -> Detail {
        let kind = error.kind();
        let message = error.to_string();
        let source = match error {
            Error::Timeout(d)
            | Error::DeliveryFailure(d)
            | Error::Config(d)
            | Error::Transport(d)
            | Error::ListenFailure { reason: d, .. } => {
                return Detail { kind, message, ..d };
            }
            other => other,
        };
        Detail::new(kind, message).with_source(source)
    }
}

impl Deref for Detail {
    type Target = str;

    fn deref(&self) -> &str {
        &self.message
    }
}

impl AsRef<str> for Detail {
    fn as_ref(&self) -> &str {
        &self.message
    }
}

impl PartialEq<str> for Detail {
    fn eq(&self, other: &str) -> bool {
        self.message == other
    }
}

impl PartialEq<&str> for Detail {
    fn eq(&self, other: &&str) -> bool {
        self.message == *other
    }
}

impl PartialEq<String> for Detail {
    fn eq(&self, other: &String) -> bool {
        &self.message == other
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The source's type only: its text may quote a password the message scrubbed.
        let mut d = f.debug_struct("Detail");
        d.field("kind", &self.kind).field("message", &self.message);
        if self.source.is_some() {
            d.field("source", &format_args!("{}", self.source_type));
        }
        d.finish()
    }
}

/// The source of a [`Detail`] whose original error quoted a password: its text with
/// the password replaced by `****` (see [`Detail::with_source_hiding`]).
#[derive(Debug)]
pub struct Redacted {
    text: String,
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl StdError for Redacted {}

/// Everything that can go wrong when sending, receiving or configuring.
///
/// The variants follow oslo.messaging's exceptions so a reader of either library
/// recognises them; [`Error::kind`] says what kind of failure it is across variants
/// (a refused login and an unreachable broker are both a `DeliveryFailure` when a send
/// gives up), [`Error::is_temporary`] whether retrying can help, and
/// [`std::error::Error::source`] returns the error of the library below.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A `call` got no reply (or no call-monitor heartbeat) in time, or another
    /// operation ran out of its time. The kind is [`ErrorKind::Timeout`] unless a
    /// failure that made it run out of time is known (a refused login, say).
    Timeout(Detail),
    /// The server raised; carries the failure's class, module, message and traceback.
    Remote(Box<RemoteError>),
    /// A compatible endpoint exists but does not have (or may not expose) the method.
    NoSuchMethod {
        /// The method that was asked for.
        method: String,
    },
    /// No endpoint matches the requested namespace and version.
    UnsupportedVersion {
        /// The requested version.
        version: String,
        /// The method that was asked for.
        method: String,
    },
    /// The target cannot be used for the operation (no topic, fanout call, ...).
    InvalidTarget {
        /// Why the target was refused.
        reason: String,
        /// The target, formatted.
        target: String,
    },
    /// A transport URL could not be parsed; the message names the bad part.
    InvalidUrl {
        /// The URL with any password masked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No driver is registered for the URL's scheme.
    UnknownDriver {
        /// The scheme of the URL.
        scheme: String,
        /// Every registered scheme, sorted.
        registered: Vec<String>,
    },
    /// The driver cannot do what was asked (e.g. RPC on a notification-only driver).
    Unsupported {
        /// The driver name.
        driver: String,
        /// The missing capability.
        feature: String,
    },
    /// The message could not be delivered after the allowed retries; the detail's kind
    /// says why (e.g. [`ErrorKind::Unreachable`]).
    DeliveryFailure(Detail),
    /// A mandatory (at-least-once) message had no queue to go to.
    Undeliverable {
        /// The exchange it was published to.
        exchange: String,
        /// Its routing key.
        routing_key: String,
    },
    /// The message's version is above the client's `version_cap`, or a cap is set and
    /// the message has no version.
    VersionCap {
        /// The version the message needs ("None" when unset).
        version: String,
        /// The client's cap.
        version_cap: String,
    },
    /// A version string is not `major.minor[.rev]`.
    InvalidVersion {
        /// The text that failed to parse.
        version: String,
    },
    /// A value could not be turned into JSON or back.
    Serialization(String),
    /// A message on the wire is malformed; the text names the bad part.
    Malformed(String),
    /// The configuration is invalid; the text names the section and option.
    Config(Detail),
    /// The broker or the driver failed; the detail's kind says how.
    Transport(Detail),
    /// A server or notification listener could not start listening.
    ListenFailure {
        /// The target it tried to listen on.
        target: String,
        /// What failed, with its kind and source.
        reason: Detail,
    },
    /// `wait` on a server ran out of time.
    WaitTimeout(Duration),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Timeout(d) => write!(f, "timed out: {d}"),
            Error::Remote(remote) => fmt::Display::fmt(remote, f),
            Error::NoSuchMethod { method } => {
                write!(f, "endpoint does not support RPC method {method}")
            }
            Error::UnsupportedVersion { version, method } => write!(
                f,
                "endpoint does not support RPC version {version}. Attempted method: {method}"
            ),
            Error::InvalidTarget { reason, target } => {
                write!(f, "invalid target {target}: {reason}")
            }
            Error::InvalidUrl { url, reason } => write!(f, "invalid transport URL {url}: {reason}"),
            Error::UnknownDriver { scheme, registered } => write!(
                f,
                "no driver for scheme {scheme:?}; registered schemes: {}",
                registered.join(", ")
            ),
            Error::Unsupported { driver, feature } => {
                write!(f, "the {driver} driver does not support {feature}")
            }
            Error::DeliveryFailure(d) => write!(f, "message delivery failed: {d}"),
            Error::Undeliverable {
                exchange,
                routing_key,
            } => write!(
                f,
                "message undeliverable to exchange {exchange:?} with routing key {routing_key:?}"
            ),
            Error::VersionCap {
                version,
                version_cap,
            } => write!(
                f,
                "requested message version, {version} is incompatible. It needs to be equal in major version and less than or equal in minor version as the specified version cap {version_cap}."
            ),
            Error::InvalidVersion { version } => write!(
                f,
                "invalid version {version:?}: version must contain a major and minor integer and an optional revision integer"
            ),
            Error::Serialization(m) => write!(f, "serialization error: {m}"),
            Error::Malformed(m) => write!(f, "malformed message: {m}"),
            Error::Config(d) => write!(f, "configuration error: {d}"),
            Error::Transport(d) => write!(f, "transport error: {d}"),
            Error::ListenFailure { target, reason } => {
                write!(f, "could not listen on {target}: {reason}")
            }
            Error::WaitTimeout(d) => {
                write!(f, "timed out after {d:?} waiting for the server to finish")
            }
        }
    }
}

/// The source is the underlying library's error itself (not a wrapper), so
/// `e.source()?.downcast_ref::<lapin::Error>()` and the like work.
impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Timeout(d)
            | Error::DeliveryFailure(d)
            | Error::Config(d)
            | Error::Transport(d)
            | Error::ListenFailure { reason: d, .. } => d.source(),
            // Transparent, as the remote failure's own text is this error's text.
            Error::Remote(remote) => remote.source(),
            _ => None,
        }
    }
}

impl From<Box<RemoteError>> for Error {
    fn from(remote: Box<RemoteError>) -> Self {
        Error::Remote(remote)
    }
}

impl Error {
    /// An [`Error::Transport`] of kind `kind` saying `message`, caused by `source`.
    pub fn transport<E: StdError + Send + Sync + 'static>(
        kind: ErrorKind,
        message: impl Into<String>,
        source: E,
    ) -> Self {
        Error::Transport(Detail::new(kind, message).with_source(source))
    }

    /// What kind of failure this is. An error whose detail was made from text alone
    /// answers with its variant's kind: [`ErrorKind::Timeout`] for a timeout,
    /// [`ErrorKind::Config`] for a configuration error, [`ErrorKind::Other`] for a
    /// transport error or a delivery failure.
    pub fn kind(&self) -> ErrorKind {
        let detailed = |d: &Detail, default: ErrorKind| match d.kind() {
            ErrorKind::Other => default,
            kind => kind,
        };
        match self {
            Error::Timeout(d) => detailed(d, ErrorKind::Timeout),
            Error::Config(d) => detailed(d, ErrorKind::Config),
            Error::DeliveryFailure(d) | Error::Transport(d) => d.kind(),
            Error::ListenFailure { reason, .. } => reason.kind(),
            Error::WaitTimeout(_) => ErrorKind::Timeout,
            Error::Remote(_) | Error::NoSuchMethod { .. } | Error::UnsupportedVersion { .. } => {
                ErrorKind::Remote
            }
            Error::InvalidUrl { .. } | Error::UnknownDriver { .. } => ErrorKind::Config,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::Undeliverable { .. } => ErrorKind::RefusedByBroker,
            Error::InvalidTarget { .. }
            | Error::VersionCap { .. }
            | Error::InvalidVersion { .. }
            | Error::Serialization(_)
            | Error::Malformed(_) => ErrorKind::InvalidInput,
        }
    }

    /// The detail of a timeout, delivery failure, configuration or transport error,
    /// or of a listen failure.
    pub fn detail(&self) -> Option<&Detail> {
        match self {
            Error::Timeout(d)
            | Error::DeliveryFailure(d)
            | Error::Config(d)
            | Error::Transport(d)
            | Error::ListenFailure { reason: d, .. } => Some(d),
            _ => None,
        }
    }

    /// Whether retrying the same operation later can succeed: timeouts, delivery
    /// failures and transport errors (broker down, connection lost), except a refused
    /// login and a failed TLS handshake: another attempt with the same credentials and
    /// certificates fails alike, so these need someone to change them.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            Error::Timeout(_) | Error::DeliveryFailure(_) | Error::Transport(_)
        ) && !matches!(self.kind(), ErrorKind::RefusedCredentials | ErrorKind::Tls)
    }

    /// This error as the failure to listen on the target `target` names: an
    /// [`Error::ListenFailure`] as it is (a driver's names its own target, and wrapping
    /// it again would say it twice), any other error as its reason, keeping its kind
    /// and source.
    pub(crate) fn listen_failure_on(self, target: impl FnOnce() -> String) -> Error {
        match self {
            failure @ Error::ListenFailure { .. } => failure,
            other => Error::ListenFailure {
                target: target(),
                reason: other.into(),
            },
        }
    }

    /// An [`Error::InvalidTarget`] for `target` (a [`Target`](crate::Target), as it
    /// displays), for drivers refusing an address.
    pub fn invalid_target(reason: impl Into<String>, target: &impl fmt::Display) -> Self {
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

    /// An error of a library below that quotes a password, as a connection URL would.
    #[derive(Debug)]
    struct Leaky(String);

    impl fmt::Display for Leaky {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "cannot open amqp://guest:{}@h/", self.0)
        }
    }

    impl StdError for Leaky {}

    fn refused() -> std::io::Error {
        std::io::Error::from(std::io::ErrorKind::ConnectionRefused)
    }

    #[test]
    fn display_is_the_message_as_before() {
        let e = Error::Transport(
            Detail::new(ErrorKind::Unreachable, "no broker at h:1").with_source(refused()),
        );
        assert_eq!(e.to_string(), "transport error: no broker at h:1");
        assert_eq!(
            Error::Timeout("no reply".into()).to_string(),
            "timed out: no reply"
        );
        assert_eq!(
            Error::DeliveryFailure(format!("gave up after {} attempts", 3).into()).to_string(),
            "message delivery failed: gave up after 3 attempts"
        );
        assert_eq!(
            Error::Config("[s] o: bad".into()).to_string(),
            "configuration error: [s] o: bad"
        );
        assert_eq!(
            Error::UnknownDriver {
                scheme: "x".into(),
                registered: vec!["a".into(), "b".into()]
            }
            .to_string(),
            "no driver for scheme \"x\"; registered schemes: a, b"
        );
    }

    #[test]
    fn a_detail_reads_like_its_message() {
        let e = Error::Timeout("no reply on topic t".into());
        assert!(matches!(&e, Error::Timeout(m) if m.contains("topic t")));
        let Error::Timeout(m) = e else { unreachable!() };
        assert_eq!(m, "no reply on topic t");
        assert_eq!(m.to_string(), "no reply on topic t");
    }

    #[test]
    fn the_source_is_the_library_error_itself() {
        let e = Error::transport(ErrorKind::Unreachable, "h:1 refused", refused());
        let source = e.source().expect("a source");
        let io = source.downcast_ref::<std::io::Error>().expect("io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
        assert!(Error::Transport("text only".into()).source().is_none());
    }

    #[test]
    fn kinds_default_to_the_variant() {
        assert_eq!(Error::Timeout("t".into()).kind(), ErrorKind::Timeout);
        assert_eq!(Error::Config("c".into()).kind(), ErrorKind::Config);
        assert_eq!(Error::Transport("x".into()).kind(), ErrorKind::Other);
        assert_eq!(Error::DeliveryFailure("x".into()).kind(), ErrorKind::Other);
        assert_eq!(
            Error::Timeout(Detail::new(ErrorKind::Unreachable, "t")).kind(),
            ErrorKind::Unreachable
        );
        assert_eq!(
            Error::WaitTimeout(Duration::from_secs(1)).kind(),
            ErrorKind::Timeout
        );
        assert_eq!(
            Error::NoSuchMethod { method: "m".into() }.kind(),
            ErrorKind::Remote
        );
    }

    #[test]
    fn refused_logins_and_tls_failures_are_not_temporary() {
        let with = |kind| Error::Transport(Detail::new(kind, "x"));
        assert!(with(ErrorKind::Unreachable).is_temporary());
        assert!(with(ErrorKind::ConnectionLost).is_temporary());
        assert!(with(ErrorKind::Other).is_temporary());
        assert!(!with(ErrorKind::RefusedCredentials).is_temporary());
        assert!(!with(ErrorKind::Tls).is_temporary());
        assert!(Error::Timeout("t".into()).is_temporary());
        assert!(!Error::Config("c".into()).is_temporary());
    }

    #[test]
    fn wrapping_keeps_the_kind_and_source_of_the_cause() {
        let last = Error::transport(ErrorKind::Unreachable, "h:1 refused", refused());
        let text = format!("after 3 attempts: {last}");
        let e = Error::DeliveryFailure(Detail::wrapping(text, last));
        assert_eq!(e.kind(), ErrorKind::Unreachable);
        assert_eq!(
            e.to_string(),
            "message delivery failed: after 3 attempts: transport error: h:1 refused"
        );
        assert!(e.source().unwrap().is::<std::io::Error>());
        // An error without a detail becomes the source itself.
        let e = Error::Transport(Detail::wrapping("wrapped", Error::Malformed("m".into())));
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.source().unwrap().is::<Error>());
    }

    #[test]
    fn a_listen_failure_keeps_the_kind_and_source() {
        let e = Error::transport(ErrorKind::RefusedCredentials, "login refused", refused())
            .listen_failure_on(|| "<Target topic=t>".into());
        assert_eq!(e.kind(), ErrorKind::RefusedCredentials);
        assert!(e.source().unwrap().is::<std::io::Error>());
        assert_eq!(
            e.to_string(),
            "could not listen on <Target topic=t>: transport error: login refused"
        );
    }

    #[test]
    fn debug_shows_the_source_type_not_its_text() {
        let e = Error::transport(ErrorKind::Other, "failed", Leaky("s3cret-pw".into()));
        let debug = format!("{e:?}");
        assert!(!debug.contains("s3cret-pw"), "{debug}");
        assert!(debug.contains("Leaky"), "{debug}");
        assert!(debug.contains("kind: Other"), "{debug}");
    }

    #[test]
    fn a_source_quoting_the_secret_is_redacted() {
        let detail = Detail::new(ErrorKind::Other, "failed")
            .with_source_hiding(Leaky("s3cret-pw".into()), "s3cret-pw");
        let e = Error::Transport(detail);
        let mut next: Option<&(dyn StdError + 'static)> = Some(&e);
        while let Some(err) = next {
            for text in [err.to_string(), format!("{err:?}")] {
                assert!(!text.contains("s3cret-pw"), "{text}");
            }
            next = err.source();
        }
        let source = e.source().unwrap();
        assert!(source.is::<Redacted>());
        assert_eq!(source.to_string(), "cannot open amqp://guest:****@h/");
        // A source that does not quote it is kept as it is.
        let kept =
            Detail::new(ErrorKind::Unreachable, "x").with_source_hiding(refused(), "s3cret-pw");
        assert!(kept.source().unwrap().is::<std::io::Error>());
    }
}
