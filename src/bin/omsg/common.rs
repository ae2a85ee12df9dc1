//! What the commands share: exit statuses, transport selection, JSON arguments,
//! signals and output.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use messaging::{Config, Context, Error, RemoteError, Transport};
use messaging_core::wire::envelope::kind_of;
use serde_json::{Map, Value};

/// The server raised an error.
pub const EXIT_REMOTE: u8 = 1;
/// No reply (or no notification) in time.
pub const EXIT_TIMEOUT: u8 = 2;
/// Anything else: usage, URL, JSON, driver, configuration, delivery.
pub const EXIT_OTHER: u8 = 3;

/// Why a command failed; decides the exit status.
#[derive(Debug)]
pub enum Failure {
    /// The server raised (exit 1).
    Remote(Box<RemoteError>),
    /// Something did not happen in time (exit 2).
    Timeout(String),
    /// Any other failure (exit 3).
    Other(String),
}

impl Failure {
    /// An exit-3 failure with `message`.
    pub fn other(message: impl Into<String>) -> Self {
        Failure::Other(message.into())
    }

    /// The process exit status for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Remote(_) => EXIT_REMOTE,
            Failure::Timeout(_) => EXIT_TIMEOUT,
            Failure::Other(_) => EXIT_OTHER,
        }
    }

    /// Prints the failure on stderr.
    pub fn report(&self) {
        match self {
            Failure::Remote(e) => {
                eprintln!(
                    "error: remote error: {}.{}: {}",
                    e.module, e.class, e.message
                );
                for line in e.traceback.iter().flat_map(|entry| entry.lines()) {
                    eprintln!("  {line}");
                }
            }
            Failure::Timeout(message) => eprintln!("error: timeout: {message}"),
            Failure::Other(message) => eprintln!("error: {message}"),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        // Display of the library's errors already masks passwords.
        match e {
            Error::Remote(remote) => Failure::Remote(remote),
            Error::Timeout(message) => Failure::Timeout(message.to_string()),
            other => Failure::Other(other.to_string()),
        }
    }
}

/// Shorthand for the commands' results.
pub type Outcome<T = ()> = Result<T, Failure>;

/// Where the transport comes from: `--url`, else the configuration file.
#[derive(Args, Debug, Clone)]
pub struct TransportArgs {
    /// Transport URL, e.g. rabbit://user:pass@host:5672/vhost (default: from --config).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// oslo.messaging configuration file: INI (nova.conf style) or TOML (*.toml). Gives the
    /// default URL and the other messaging options (control_exchange, rpc_response_timeout,
    /// the oslo_messaging_rabbit section, ...).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Which of the configuration's transports a command uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `[DEFAULT] transport_url`.
    Rpc,
    /// `[oslo_messaging_notifications] transport_url`, else the RPC one.
    Notifications,
}

impl TransportArgs {
    /// The configuration, with `--url` (if given) as the URL of `purpose`, checked
    /// whole: a mistake in any driver's section is refused here, before anything
    /// connects.
    pub fn config(&self, purpose: Purpose) -> Outcome<Config> {
        let mut cfg = match (&self.config, &self.url) {
            (Some(path), _) => Config::from_file(path)?,
            (None, Some(_)) => Config::default(),
            (None, None) => {
                return Err(Failure::other(
                    "no transport URL: pass --url URL, or --config FILE naming one \
                     ([DEFAULT] transport_url)",
                ));
            }
        };
        if let Some(url) = &self.url {
            match purpose {
                Purpose::Rpc => cfg.default.transport_url = url.clone(),
                Purpose::Notifications => cfg.notifications.transport_url = Some(url.clone()),
            }
        }
        messaging::registry().check_config(&cfg)?;
        Ok(cfg)
    }

    /// Opens the transport for `purpose` as oslo does: the RPC URL, or the notification
    /// URL falling back to the RPC one.
    pub async fn open(&self, cfg: &Config, purpose: Purpose) -> Outcome<Transport> {
        let registry = messaging::registry();
        let transport = match purpose {
            Purpose::Rpc => registry.rpc_transport(cfg).await?,
            Purpose::Notifications => registry.notification_transport(cfg).await?,
        };
        tracing::debug!(url = %transport.url().masked(), driver = transport.driver().name(), "transport open");
        Ok(transport)
    }
}

/// Parses `text` (the argument `what`) as a JSON object.
pub fn json_object(text: &str, what: &str) -> Outcome<Map<String, Value>> {
    match json_value(text, what)? {
        Value::Object(map) => Ok(map),
        other => Err(Failure::other(format!(
            "{what} must be a JSON object, got {}",
            kind_of(&other)
        ))),
    }
}

/// Parses `text` (the argument `what`) as any JSON value.
pub fn json_value(text: &str, what: &str) -> Outcome<Value> {
    serde_json::from_str(text).map_err(|e| Failure::other(format!("{what} is not valid JSON: {e}")))
}

/// The context given by `--context`, empty if none.
pub fn context(text: Option<&str>) -> Outcome<Context> {
    match text {
        None => Ok(Context::new()),
        Some(text) => Ok(Context(json_object(text, "--context")?)),
    }
}

/// clap parser of a duration in (possibly fractional) seconds, greater than zero.
pub fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("{text:?} must be more than 0 seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{text:?} is too large"))
}

/// This machine's host name, if it can be found without extra dependencies.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// Writes one line of JSON to stdout and flushes it, so that a reader sees it at once.
pub fn print_json_line(value: &Value) -> Outcome {
    print_line(&value.to_string())
}

/// Writes `line` and a newline to stdout and flushes.
pub fn print_line(line: &str) -> Outcome {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| Failure::other(format!("cannot write to stdout: {e}")))
}

/// Resolves at the next SIGINT or SIGTERM (Ctrl-C only where there is no SIGTERM).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            (int, term) => {
                let e = int.err().or(term.err()).map(|e| e.to_string());
                tracing::warn!(error = ?e, "cannot watch SIGINT/SIGTERM; only Ctrl-C stops");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Releases the transport's connections, without letting a stuck driver delay exit.
pub async fn close(transport: &Transport) {
    if tokio::time::timeout(Duration::from_secs(5), transport.cleanup())
        .await
        .is_err()
    {
        tracing::warn!("closing the transport took too long; exiting anyway");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_accept_fractions_and_refuse_nonsense() {
        assert_eq!(seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert!(seconds("0").is_err());
        assert!(seconds("-1").is_err());
        assert!(seconds("NaN").is_err());
        assert!(seconds("soon").unwrap_err().contains("soon"));
    }

    #[test]
    fn json_errors_name_the_argument() {
        let Err(Failure::Other(m)) = json_object("{bad", "ARGS_JSON") else {
            panic!()
        };
        assert!(m.starts_with("ARGS_JSON is not valid JSON"), "{m}");
        let Err(Failure::Other(m)) = json_object("[1]", "ARGS_JSON") else {
            panic!()
        };
        assert_eq!(m, "ARGS_JSON must be a JSON object, got an array");
    }

    #[test]
    fn errors_map_to_exit_statuses() {
        let remote: Failure = Error::Remote(Box::new(RemoteError::value_error("x"))).into();
        assert_eq!(remote.exit_code(), EXIT_REMOTE);
        assert_eq!(
            Failure::from(Error::Timeout("t".into())).exit_code(),
            EXIT_TIMEOUT
        );
        assert_eq!(
            Failure::from(Error::DeliveryFailure("d".into())).exit_code(),
            EXIT_OTHER
        );
    }

    #[test]
    fn url_overrides_the_purpose_s_url_only() {
        let args = TransportArgs {
            url: Some("memory:///x".into()),
            config: None,
        };
        let cfg = args.config(Purpose::Notifications).unwrap();
        assert_eq!(cfg.notification_transport_url(), "memory:///x");
        let cfg = args.config(Purpose::Rpc).unwrap();
        assert_eq!(cfg.rpc_transport_url(), "memory:///x");
        let none = TransportArgs {
            url: None,
            config: None,
        };
        let Err(Failure::Other(m)) = none.config(Purpose::Rpc) else {
            panic!()
        };
        assert!(m.contains("--url") && m.contains("--config"), "{m}");
    }
}
