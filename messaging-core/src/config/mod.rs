//! Configuration: oslo.messaging's options, with oslo's names and defaults.
//!
//! [`Config`] reads an oslo.config-style INI file, so the `nova.conf` (or any other
//! service's file) that configures the Python services today works unchanged, or a TOML
//! file with the same section and option names and native TOML types:
//!
//! ```
//! use messaging_core::Config;
//!
//! let conf = Config::from_ini_str(
//!     "[DEFAULT]\n\
//!      transport_url = rabbit://nova:secret@rabbit1:5672,nova:secret@rabbit2:5672/\n\
//!      control_exchange = nova\n\
//!      [database]\n\
//!      connection = mysql+pymysql://nova:pw@db/nova\n\
//!      [oslo_messaging_notifications]\n\
//!      driver = messagingv2\n",
//! )?;
//! assert_eq!(conf.default.control_exchange, "nova");
//! assert_eq!(conf.notifications.driver, ["messagingv2"]);
//! // Debug output never shows passwords.
//! assert!(!format!("{conf:?}").contains("secret"));
//!
//! let same = Config::from_toml_str(
//!     r#"
//!     [DEFAULT]
//!     transport_url = "rabbit://nova:secret@rabbit1:5672,nova:secret@rabbit2:5672/"
//!     control_exchange = "nova"
//!     [oslo_messaging_notifications]
//!     driver = ["messagingv2"]
//!     "#,
//! )?;
//! assert_eq!(conf.default, same.default);
//! assert_eq!(conf.notifications, same.notifications);
//! # Ok::<(), messaging_core::Error>(())
//! ```
//!
//! # Who owns which section
//!
//! The core types the sections every transport uses: `[DEFAULT]` ([`DefaultSection`]),
//! `[oslo_messaging_notifications]` ([`NotificationsSection`]) and
//! `[oslo_messaging_metrics]` ([`MetricsSection`]). Each driver owns its own section
//! (`[oslo_messaging_rabbit]` is `driver_rabbit::RabbitSection`,
//! `[oslo_messaging_kafka]` `driver_kafka::KafkaSection`, `[oslo_messaging_zmq]`
//! `driver_zmq::ZmqSection`): its type, defaults, checks, and deprecated, removed and
//! ignored names, declared by implementing [`DriverSection`]. A [`Config`] keeps every
//! other `[oslo_messaging_*]` section as written, with the line of each option, and
//! types it when asked: [`Config::section`], or [`Config::section_with_url`] with a
//! transport URL's query laid over it.
//!
//! A driver registers its section with the [`DriverRegistry`](crate::DriverRegistry)
//! ([`register_section`](crate::DriverRegistry::register_section)); creating a
//! transport checks every registered section first
//! ([`check_config`](crate::DriverRegistry::check_config)), so a mistake in
//! `[oslo_messaging_kafka]` is found even when RPC runs over RabbitMQ. A section no
//! registered driver claims (`[oslo_messaging_amqp]` of a driver this build lacks) is
//! kept as written and not checked.
//!
//! # Rules, as in oslo.config
//!
//! * sections that are not messaging sections (`[database]`, `[api]`, ...) and unknown
//!   options in `[DEFAULT]` are ignored, since other libraries keep options there too;
//! * an unknown option in a messaging section is an error naming the section, option
//!   and line (for a driver's section, when it is read or checked); options that
//!   oslo.messaging has removed (for example `[oslo_messaging_rabbit] rabbit_host` or
//!   `heartbeat_in_pthread`) are ignored with a warning, since oslo.config ignores
//!   them too;
//! * deprecated names are still accepted (`rpc_thread_pool_size` for
//!   `executor_thread_pool_size`, `kombu_reconnect_timeout` for
//!   `kombu_missing_consumer_retry_timeout`, the zmq options' old `[DEFAULT]` home); the
//!   current name wins when both are set;
//! * options oslo defines but this project does not use are accepted and ignored; each
//!   section lists them with the reason ([`DriverSection::IGNORED`]);
//! * a badly typed value is an error naming section, option and value, except that the
//!   value of a secret option (`transport_url`, `ssl_client_key_password`) is never
//!   shown;
//! * `choices` and `min`/`max` limits of the oslo options are checked
//!   ([`DriverSection::validate`]).
//!
//! The INI dialect is described in detail in the `ini` submodule: `key = value` or
//! `key: value`, comment lines starting with `#` or `;`, indented continuation lines,
//! repeated keys (all kept for multi-valued options such as
//! `[oslo_messaging_notifications] driver`, last one wins otherwise), booleans
//! `true/false/yes/no/on/off/1/0` in any case, comma separated lists, and `$option`
//! substitution with `$$` for a literal `$`.

mod de;
mod ini;
mod mask;
mod section;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

use self::de::{Document, DocumentDeserializer, Entry, Origin, RawValue, normalize_section};
use self::mask::mask_url_password;

pub use self::section::{Deprecated, DriverSection, Ignored, check_choice, check_range};

/// Name of the section holding oslo's global options.
const DEFAULT_SECTION: &str = "DEFAULT";
/// Section of the notification options.
const NOTIFICATIONS_SECTION: &str = "oslo_messaging_notifications";
/// Section of the oslo.metrics options.
const METRICS_SECTION: &str = "oslo_messaging_metrics";
/// What the names of the messaging sections begin with; a section without it (other
/// than `[DEFAULT]`) belongs to another library and is not read at all.
const MESSAGING_PREFIX: &str = "oslo_messaging_";

/// Name given to `deserialize_newtype_struct` by [`de::multi_str`], so that the INI
/// deserializer hands over every occurrence of a multi-valued option.
const MULTI_MARKER: &str = "__oslo_config_multi_str_opt";

/// The core's options whose value must never appear in error messages or `Debug`
/// output (drivers list theirs in [`DriverSection::SECRETS`]).
const SECRET_OPTIONS: &[(&str, &str)] = &[
    (DEFAULT_SECTION, "transport_url"),
    (NOTIFICATIONS_SECTION, "transport_url"),
];

/// The deprecated names of `[DEFAULT]` options.
const DEFAULT_DEPRECATED: &[Deprecated] = &[Deprecated::new(
    DEFAULT_SECTION,
    "rpc_thread_pool_size",
    "executor_thread_pool_size",
)];

/// `[DEFAULT]` options that oslo.messaging defined once and has removed since.
/// oslo.config ignores them, so do we (with a warning).
const DEFAULT_REMOVED: &[&str] = &[
    "rpc_backend",
    "notification_driver",
    "notification_transport_url",
    "notification_topics",
    "routing_notifier_config",
];

/// Whether the loaders read section `name`: `[DEFAULT]` and the `[oslo_messaging_*]`
/// sections.
fn is_messaging_section(name: &str) -> bool {
    name == DEFAULT_SECTION || name.starts_with(MESSAGING_PREFIX)
}

/// oslo.messaging's options: the core's sections typed, the drivers' sections as
/// written until a driver reads its own ([`Config::section`]).
///
/// `Default` gives oslo's defaults. Build one by hand from the default and set fields:
/// `let mut c = Config::default(); c.default.transport_url = "memory://".into();`.
/// Configurations are not comparable as a whole, since the drivers' sections are kept
/// as written (an INI file and its TOML form would differ there): compare sections.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `[DEFAULT]`: transport URL, control exchange, RPC timeouts.
    pub default: DefaultSection,
    /// `[oslo_messaging_notifications]`: notifier drivers, topics and transport.
    pub notifications: NotificationsSection,
    /// `[oslo_messaging_metrics]`: the oslo.metrics exporter.
    pub metrics: MetricsSection,
    /// `[DEFAULT]` and every other `[oslo_messaging_*]` section as written, for the
    /// drivers to type: `[DEFAULT]` because some driver options were read from there
    /// once under their old names.
    raw: RawSections,
    /// The file this was read from, named in the errors of the drivers' sections as in
    /// those of the loaders.
    file: Option<PathBuf>,
}

/// The sections a [`Config`] keeps as written. `Debug` shows option names only: the core
/// does not know which driver options are secrets.
#[derive(Clone, Default)]
struct RawSections(Document<RawValue>);

impl fmt::Debug for RawSections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.sections.iter().map(|s| {
                let names: Vec<&str> = s.entries.iter().map(|e| e.key.as_str()).collect();
                (&s.name, names)
            }))
            .finish()
    }
}

/// The core's typed sections, as the loaders deserialize them.
#[derive(Deserialize, Default)]
#[serde(default)]
struct CoreSections {
    #[serde(rename = "DEFAULT")]
    default: DefaultSection,
    #[serde(rename = "oslo_messaging_notifications")]
    notifications: NotificationsSection,
    #[serde(rename = "oslo_messaging_metrics")]
    metrics: MetricsSection,
}

/// `[DEFAULT]` options of oslo.messaging (`transport.py`, `rpc/client.py`,
/// `server.py`, `rpc/dispatcher.py`). Other `[DEFAULT]` keys are ignored.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct DefaultSection {
    /// Transport URL for RPC (and for notifications unless
    /// `[oslo_messaging_notifications] transport_url` is set):
    /// `driver://[user:pass@]host:port[,[userN:passN@]hostN:portN]/virtual_host?query`.
    /// Secret: may embed passwords. Default `rabbit://`.
    pub transport_url: String,
    /// Exchange topics are scoped under unless the URL names one. Default `openstack`
    /// (services change it, e.g. nova sets `nova`).
    pub control_exchange: String,
    /// Seconds to wait for the reply of a call. Default 60.
    pub rpc_response_timeout: u64,
    /// Size of the pool running incoming requests. Default 64. Old name:
    /// `rpc_thread_pool_size`.
    pub executor_thread_pool_size: usize,
    /// Add an endpoint answering `oslo_rpc_server_ping` calls with `pong`. Default false.
    pub rpc_ping_enabled: bool,
}

impl Default for DefaultSection {
    fn default() -> Self {
        DefaultSection {
            transport_url: "rabbit://".to_string(),
            control_exchange: "openstack".to_string(),
            rpc_response_timeout: 60,
            executor_thread_pool_size: 64,
            rpc_ping_enabled: false,
        }
    }
}

impl fmt::Debug for DefaultSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultSection")
            .field("transport_url", &mask_url_password(&self.transport_url))
            .field("control_exchange", &self.control_exchange)
            .field("rpc_response_timeout", &self.rpc_response_timeout)
            .field("executor_thread_pool_size", &self.executor_thread_pool_size)
            .field("rpc_ping_enabled", &self.rpc_ping_enabled)
            .finish()
    }
}

/// `[oslo_messaging_notifications]` options (`notify/notifier.py`,
/// `notify/_impl_routing.py`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct NotificationsSection {
    /// Notification drivers: `messaging`, `messagingv2`, `routing`, `log`, `test`,
    /// `noop`. Multi-valued: in INI every `driver = ...` line adds to the list (each may
    /// also be comma separated). Default empty, which sends nothing.
    #[serde(deserialize_with = "de::multi_str")]
    pub driver: Vec<String>,
    /// Transport URL for notifications; when unset (or empty) `[DEFAULT] transport_url`
    /// is used. Secret: may embed passwords.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport_url: Option<String>,
    /// Topics notifications are sent on (comma separated in INI). Default
    /// `notifications`.
    pub topics: Vec<String>,
    /// How many times to retry sending a notification: 0 never, -1 forever. Default -1.
    pub retry: i64,
    /// Path of the routing notifier's YAML file. Default empty.
    pub routing_config: String,
}

impl Default for NotificationsSection {
    fn default() -> Self {
        NotificationsSection {
            driver: Vec::new(),
            transport_url: None,
            topics: vec!["notifications".to_string()],
            retry: -1,
            routing_config: String::new(),
        }
    }
}

impl fmt::Debug for NotificationsSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotificationsSection")
            .field("driver", &self.driver)
            .field(
                "transport_url",
                &self.transport_url.as_deref().map(mask_url_password),
            )
            .field("topics", &self.topics)
            .field("retry", &self.retry)
            .field("routing_config", &self.routing_config)
            .finish()
    }
}

/// `[oslo_messaging_metrics]` options (`_metrics/client.py`): the oslo.metrics
/// exporter of the RPC metrics ([`OsloMetricsSink`](crate::telemetry::OsloMetricsSink)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct MetricsSection {
    /// Send RPC metrics to oslo.metrics. Default false.
    pub metrics_enabled: bool,
    /// Metrics buffered before sending. Default 1000.
    pub metrics_buffer_size: usize,
    /// Unix socket of the metrics collector. Default `/var/tmp/metrics_collector.sock`.
    pub metrics_socket_file: String,
    /// Process name reported with the metrics. Default empty.
    pub metrics_process_name: String,
    /// Seconds an update the daemon does not take is retried (once a second) before it
    /// is dropped. Default 10.
    pub metrics_thread_stop_timeout: u64,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            metrics_enabled: false,
            metrics_buffer_size: 1000,
            metrics_socket_file: "/var/tmp/metrics_collector.sock".to_string(),
            metrics_process_name: String::new(),
            metrics_thread_stop_timeout: 10,
        }
    }
}

/// This host's name, as Python's `socket.gethostname()` (`localhost` if unknown): the
/// default of the `hostname` and `rpc_zmq_host` options, for drivers that need it where
/// an option was set empty.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|n| !n.is_empty()))
        .or_else(|| std::env::var("COMPUTERNAME").ok().filter(|n| !n.is_empty()))
        .unwrap_or_else(|| "localhost".to_string())
}

/// The executable's file name, as Python's `os.path.basename(sys.argv[0])` (empty if
/// unknown): the default of the `processname` option.
pub fn process_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|arg0| {
            Path::new(&arg0)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_default()
}

/// Builds a configuration error; every error of this module and of the drivers'
/// sections is made here.
pub fn error(message: impl Into<String>) -> Error {
    Error::Config(crate::Detail::new(crate::ErrorKind::Config, message))
}

/// Logs `message` as a warning the first time this process sees it: a configuration is
/// checked each time a transport is created, and one mistake is worth one line.
pub(crate) fn warn_once(message: &str) {
    static SAID: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let first = SAID
        .lock()
        .map(|mut said| said.insert(message.to_string()))
        .unwrap_or(true);
    if first {
        tracing::warn!("{message}");
    }
}

fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        let message = format!("cannot read {}: {e}", path.display());
        Error::Config(crate::Detail::new(crate::ErrorKind::Config, message).with_source(e))
    })
}

fn in_file(path: &Path, e: Error) -> Error {
    match e {
        Error::Config(message) => error(format!("{}: {message}", path.display())),
        other => other,
    }
}

impl Config {
    /// Reads an oslo.config-style INI text (`nova.conf` and the like).
    ///
    /// Only the messaging sections are read; see the [module documentation](self) for
    /// the rules. Errors are [`Error::Config`] naming the line, section and option.
    /// The drivers' sections are kept as written: a mistake there is found when the
    /// driver reads its section, or by
    /// [`DriverRegistry::check_config`](crate::DriverRegistry::check_config).
    pub fn from_ini_str(text: &str) -> Result<Config> {
        let doc = ini::document(text, is_messaging_section).map_err(error)?;
        Config::from_document(doc.map(RawValue::Ini))
    }

    /// Reads an oslo.config-style INI file; see [`Config::from_ini_str`].
    pub fn from_ini_file(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let config = Config::from_ini_str(&read_file(path)?).map_err(|e| in_file(path, e))?;
        Ok(config.read_from(path))
    }

    /// Reads a TOML text: one table per section (`[DEFAULT]`,
    /// `[oslo_messaging_rabbit]`, ...), native TOML types, lists as arrays. Tables that
    /// are not messaging sections are ignored; the other rules are those of the INI
    /// form.
    pub fn from_toml_str(text: &str) -> Result<Config> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            // Not `e.to_string()`: it quotes the offending line, which may hold a
            // password.
            let place = match e.span() {
                Some(span) => {
                    let before = text.get(..span.start).unwrap_or(text);
                    let line = before.matches('\n').count() + 1;
                    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                    let column = before[line_start..].chars().count() + 1;
                    format!(" at line {line}, column {column}")
                }
                None => String::new(),
            };
            error(format!(
                "TOML syntax error{place}: {}",
                e.message().trim_end()
            ))
        })?;
        let mut doc = Document::new();
        for (name, value) in table {
            let section = normalize_section(&name);
            if !is_messaging_section(&section) {
                continue;
            }
            let toml::Value::Table(options) = value else {
                return Err(error(format!(
                    "[{section}] must be a table, found a {}",
                    value.type_str()
                )));
            };
            let entries = &mut doc.section_mut(&section).entries;
            for (key, value) in options {
                entries.push(Entry {
                    origin: Origin {
                        section: section.clone(),
                        key: key.clone(),
                        line: None,
                    },
                    key,
                    value: RawValue::Toml(value),
                });
            }
        }
        Config::from_document(doc)
    }

    /// Reads a TOML file; see [`Config::from_toml_str`].
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let config = Config::from_toml_str(&read_file(path)?).map_err(|e| in_file(path, e))?;
        Ok(config.read_from(path))
    }

    /// This configuration, saying it was read from `path`.
    fn read_from(mut self, path: &Path) -> Config {
        self.file = Some(path.to_path_buf());
        self
    }

    /// Reads a file as TOML if its name ends in `.toml` (any case), as INI otherwise.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let is_toml = path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("toml"));
        if is_toml {
            Config::from_toml_file(path)
        } else {
            Config::from_ini_file(path)
        }
    }

    /// Types the core's sections and keeps the rest as written.
    fn from_document(mut doc: Document<RawValue>) -> Result<Config> {
        let mut warnings = doc.resolve_deprecated(DEFAULT_SECTION, DEFAULT_DEPRECATED);
        warnings.extend(doc.drop_removed(DEFAULT_SECTION, DEFAULT_REMOVED));
        for warning in &warnings {
            warn_once(warning);
        }
        let mut core = Document::new();
        if let Some(default) = doc.section(DEFAULT_SECTION) {
            core.sections.push(default.clone());
        }
        // Only the core reads these two: they are not kept as written.
        for name in [NOTIFICATIONS_SECTION, METRICS_SECTION] {
            if let Some(section) = doc.remove_section(name) {
                core.sections.push(section);
            }
        }
        let core = CoreSections::deserialize(DocumentDeserializer::new(core, SECRET_OPTIONS))
            .map_err(|e| error(e.0))?;
        doc.sections.retain(|s| !s.entries.is_empty());
        let config = Config {
            default: core.default,
            notifications: core.notifications,
            metrics: core.metrics,
            raw: RawSections(doc),
            file: None,
        };
        config.validate()?;
        Ok(config)
    }

    /// The transport URL for RPC: `[DEFAULT] transport_url` (default `rabbit://`).
    pub fn rpc_transport_url(&self) -> &str {
        &self.default.transport_url
    }

    /// The transport URL for notifications: `[oslo_messaging_notifications]
    /// transport_url` if set and not empty, else `[DEFAULT] transport_url` (so
    /// notifications can go to another broker, e.g. Kafka, than RPC).
    pub fn notification_transport_url(&self) -> &str {
        match self.notifications.transport_url.as_deref() {
            Some(url) if !url.is_empty() => url,
            _ => self.rpc_transport_url(),
        }
    }

    /// Checks the limits oslo puts on the core's own options (`[DEFAULT]`,
    /// `[oslo_messaging_notifications]`, `[oslo_messaging_metrics]`; oslo sets none on
    /// them today, so this accepts every value the loaders could type). A driver's
    /// section is checked when it is read ([`Config::section`]), and every registered
    /// driver's by [`DriverRegistry::check_config`](crate::DriverRegistry::check_config).
    pub fn validate(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
