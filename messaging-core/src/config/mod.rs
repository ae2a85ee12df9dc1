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
//!      driver = messagingv2\n\
//!      [oslo_messaging_rabbit]\n\
//!      rabbit_quorum_queue = true\n",
//! )?;
//! assert_eq!(conf.default.control_exchange, "nova");
//! assert!(conf.rabbit.rabbit_quorum_queue);
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
//!     [oslo_messaging_rabbit]
//!     rabbit_quorum_queue = true
//!     "#,
//! )?;
//! assert_eq!(conf, same);
//! # Ok::<(), messaging_core::Error>(())
//! ```
//!
//! Rules, as in oslo.config:
//! * sections that are not messaging sections (`[database]`, `[api]`, ...) and unknown
//!   options in `[DEFAULT]` are ignored, since other libraries keep options there too;
//! * an unknown option in a messaging section (`[oslo_messaging_*]`) is an error naming
//!   the section and option; options that oslo.messaging has removed (for example
//!   `[oslo_messaging_rabbit] rabbit_host` or `heartbeat_in_pthread`) are ignored with a
//!   warning, since oslo.config ignores them too;
//! * deprecated names are still accepted (`rpc_thread_pool_size` for
//!   `executor_thread_pool_size`, `kombu_reconnect_timeout` for
//!   `kombu_missing_consumer_retry_timeout`, the zmq options' old `[DEFAULT]` home); the
//!   current name wins when both are set;
//! * a badly typed value is an error naming section, option and value, except that the
//!   value of a secret option (`transport_url`, `ssl_client_key_password`) is never
//!   shown;
//! * `choices` and `min`/`max` limits of the oslo options are checked
//!   ([`Config::validate`]).
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

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

use self::de::{Document, DocumentDeserializer, Entry, Origin, normalize_section};
use self::mask::{MASK, mask_url_password};

/// Name of the section holding oslo's global options.
const DEFAULT_SECTION: &str = "DEFAULT";
/// Section of the notification options.
const NOTIFICATIONS_SECTION: &str = "oslo_messaging_notifications";
/// Section of the RabbitMQ driver options.
const RABBIT_SECTION: &str = "oslo_messaging_rabbit";
/// Section of the Kafka driver options.
const KAFKA_SECTION: &str = "oslo_messaging_kafka";
/// Section of the ZeroMQ driver options.
const ZMQ_SECTION: &str = "oslo_messaging_zmq";
/// Section of the oslo.metrics options.
const METRICS_SECTION: &str = "oslo_messaging_metrics";

/// Every section [`Config`] reads.
const SECTIONS: &[&str] = &[
    DEFAULT_SECTION,
    NOTIFICATIONS_SECTION,
    RABBIT_SECTION,
    KAFKA_SECTION,
    ZMQ_SECTION,
    METRICS_SECTION,
];

/// Name given to `deserialize_newtype_struct` by [`de::multi_str`], so that the INI
/// deserializer hands over every occurrence of a multi-valued option.
const MULTI_MARKER: &str = "__oslo_config_multi_str_opt";

/// Options whose value must never appear in error messages or `Debug` output.
const SECRET_OPTIONS: &[(&str, &str)] = &[
    (DEFAULT_SECTION, "transport_url"),
    (NOTIFICATIONS_SECTION, "transport_url"),
    (KAFKA_SECTION, "ssl_client_key_password"),
];

/// A deprecated spelling of an option (oslo.config's `deprecated_name` and
/// `deprecated_group`).
struct Deprecated {
    section: &'static str,
    name: &'static str,
    old_section: &'static str,
    old_name: &'static str,
}

const fn deprecated(
    section: &'static str,
    name: &'static str,
    old_section: &'static str,
    old_name: &'static str,
) -> Deprecated {
    Deprecated {
        section,
        name,
        old_section,
        old_name,
    }
}

/// A zmq option that oslo.config also read from `[DEFAULT]`
/// (`deprecated_group='DEFAULT'` in `zmq_options.py`).
const fn zmq_from_default(name: &'static str) -> Deprecated {
    deprecated(ZMQ_SECTION, name, DEFAULT_SECTION, name)
}

/// The deprecated names oslo.messaging accepts (and the zmq driver did).
const DEPRECATED_OPTIONS: &[Deprecated] = &[
    deprecated(
        DEFAULT_SECTION,
        "executor_thread_pool_size",
        DEFAULT_SECTION,
        "rpc_thread_pool_size",
    ),
    deprecated(
        RABBIT_SECTION,
        "kombu_missing_consumer_retry_timeout",
        RABBIT_SECTION,
        "kombu_reconnect_timeout",
    ),
    deprecated(
        ZMQ_SECTION,
        "zmq_linger",
        DEFAULT_SECTION,
        "rpc_cast_timeout",
    ),
    zmq_from_default("rpc_zmq_bind_address"),
    zmq_from_default("rpc_zmq_matchmaker"),
    zmq_from_default("rpc_zmq_contexts"),
    zmq_from_default("rpc_zmq_topic_backlog"),
    zmq_from_default("rpc_zmq_ipc_dir"),
    zmq_from_default("rpc_zmq_host"),
    zmq_from_default("rpc_poll_timeout"),
    zmq_from_default("zmq_target_expire"),
    zmq_from_default("zmq_target_update"),
    zmq_from_default("use_pub_sub"),
    zmq_from_default("use_router_proxy"),
    zmq_from_default("rpc_zmq_min_port"),
    zmq_from_default("rpc_zmq_max_port"),
    zmq_from_default("rpc_zmq_bind_port_retries"),
    zmq_from_default("rpc_zmq_serialization"),
];

/// Options that oslo.messaging defined in these sections once and has removed since
/// (including removed deprecated names). oslo.config ignores them, so do we (with a
/// warning) instead of calling them unknown.
const REMOVED_OPTIONS: &[(&str, &[&str])] = &[
    (
        DEFAULT_SECTION,
        &[
            "rpc_backend",
            "notification_driver",
            "notification_transport_url",
            "notification_topics",
            "routing_notifier_config",
        ],
    ),
    (
        RABBIT_SECTION,
        &[
            "fake_rabbit",
            "heartbeat_in_pthread",
            "rabbit_host",
            "rabbit_hosts",
            "rabbit_port",
            "rabbit_userid",
            "rabbit_password",
            "rabbit_virtual_host",
            "rabbit_use_ssl",
            "rabbit_max_retries",
            "rabbit_durable_queues",
            "rabbit_quroum_max_memory_length",
            "rabbit_quroum_max_memory_bytes",
            "kombu_ssl_version",
            "kombu_ssl_keyfile",
            "kombu_ssl_certfile",
            "kombu_ssl_ca_certs",
            "send_single_reply",
        ],
    ),
    (
        KAFKA_SECTION,
        &[
            "kafka_default_host",
            "kafka_default_port",
            "pool_size",
            "conn_pool_min_size",
            "conn_pool_ttl",
        ],
    ),
    (
        ZMQ_SECTION,
        &[
            "rpc_zmq_port",
            "rpc_zmq_concurrency",
            "rpc_zmq_native",
            "rpc_zmq_all_req_rep",
            "rpc_zmq_linger",
            "direct_over_proxy",
            "zmq_use_broker",
        ],
    ),
];

/// All of oslo.messaging's options, one field per section.
///
/// `Default` gives oslo's defaults. The serde form (used for TOML) has one table per
/// section, named as in oslo: `[DEFAULT]`, `[oslo_messaging_notifications]`,
/// `[oslo_messaging_rabbit]`, `[oslo_messaging_kafka]`, `[oslo_messaging_zmq]`,
/// `[oslo_messaging_metrics]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// `[DEFAULT]`: transport URL, control exchange, RPC timeouts.
    #[serde(rename = "DEFAULT")]
    pub default: DefaultSection,
    /// `[oslo_messaging_notifications]`: notifier drivers, topics and transport.
    #[serde(rename = "oslo_messaging_notifications")]
    pub notifications: NotificationsSection,
    /// `[oslo_messaging_rabbit]`: the RabbitMQ driver.
    #[serde(rename = "oslo_messaging_rabbit")]
    pub rabbit: RabbitSection,
    /// `[oslo_messaging_kafka]`: the Kafka driver (notifications only).
    #[serde(rename = "oslo_messaging_kafka")]
    pub kafka: KafkaSection,
    /// `[oslo_messaging_zmq]`: the ZeroMQ driver (removed from oslo.messaging in 2018).
    #[serde(rename = "oslo_messaging_zmq")]
    pub zmq: ZmqSection,
    /// `[oslo_messaging_metrics]`: oslo.metrics reporting.
    #[serde(rename = "oslo_messaging_metrics")]
    pub metrics: MetricsSection,
}

/// `[DEFAULT]` options of oslo.messaging (`transport.py`, `rpc/client.py`,
/// `server.py`, `rpc/dispatcher.py`). Other `[DEFAULT]` keys are ignored.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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

/// `[oslo_messaging_rabbit]` options (`_drivers/impl_rabbit.py` `rabbit_opts` and
/// `_drivers/amqp.py` `amqp_opts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RabbitSection {
    /// Size of the RPC connection pool (at least 1). Default 30.
    pub rpc_conn_pool_size: usize,
    /// Pool size under which idle connections are not expired. Default 2.
    pub conn_pool_min_size: usize,
    /// Seconds an idle pooled connection lives. Default 1200.
    pub conn_pool_ttl: u64,
    /// Connect over TLS. Default false.
    pub ssl: bool,
    /// TLS version (`TLSv1`, `SSLv23`, maybe `TLSv1_1`, `TLSv1_2`). Default empty.
    pub ssl_version: String,
    /// TLS client key file. Default empty.
    pub ssl_key_file: String,
    /// TLS client certificate file. Default empty.
    pub ssl_cert_file: String,
    /// CA file; when set the broker certificate is verified. Default empty.
    pub ssl_ca_file: String,
    /// With `ssl_ca_file`, also verify the broker hostname. Default true (deprecated
    /// toggle).
    pub ssl_enforce_hostname_verification: bool,
    /// Enforce OpenSSL FIPS mode. No effect. Default false (deprecated).
    pub ssl_enforce_fips_mode: bool,
    /// Seconds to wait before reconnecting after a consumer cancel notification
    /// (0 to 4.5). Default 1.0.
    pub kombu_reconnect_delay: f64,
    /// Random extra seconds added to that wait. Default 0.0.
    pub kombu_reconnect_splay: f64,
    /// Experimental message compression: `gzip` or `bz2`. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kombu_compression: Option<String>,
    /// Seconds to keep trying to send a reply to a missing client's queue. Default 60.
    /// Old name: `kombu_reconnect_timeout`.
    pub kombu_missing_consumer_retry_timeout: u64,
    /// How the next node of a multi-host URL is chosen: `round-robin` or `shuffle`.
    /// Default `round-robin`.
    pub kombu_failover_strategy: String,
    /// Login method: `PLAIN`, `AMQPLAIN`, `EXTERNAL` or `RABBIT-CR-DEMO`. Default
    /// `AMQPLAIN`.
    pub rabbit_login_method: String,
    /// Seconds between connection attempts (at least 1). Default 1.
    pub rabbit_retry_interval: u64,
    /// Seconds added to the interval after each failed attempt. Default 2.
    pub rabbit_retry_backoff: u64,
    /// Maximum seconds between connection attempts (at least 1). Default 30.
    pub rabbit_interval_max: u64,
    /// Declare queues with `x-ha-policy: all` (legacy mirrored queues). Default false.
    pub rabbit_ha_queues: bool,
    /// Use quorum queues (durable, replicated). Default false.
    pub rabbit_quorum_queue: bool,
    /// Use quorum queues for reply and fanout queues too. Default false.
    pub rabbit_transient_quorum_queue: bool,
    /// Quorum queue `x-delivery-limit`; 0 for none. Default 0.
    pub rabbit_quorum_delivery_limit: u64,
    /// Quorum queue `x-max-in-memory-length`; 0 for none. Default 0.
    pub rabbit_quorum_max_memory_length: u64,
    /// Quorum queue `x-max-in-memory-bytes`; 0 for none. Default 0.
    pub rabbit_quorum_max_memory_bytes: u64,
    /// Seconds before unused reply and fanout queues expire (`x-expires`; stream
    /// `x-max-age` with `rabbit_stream_fanout`); 0 disables. Default 1800.
    pub rabbit_transient_queues_ttl: u64,
    /// Messages to prefetch (AMQP `basic.qos`); 0 for unlimited. Default 0.
    pub rabbit_qos_prefetch_count: u16,
    /// Seconds without heartbeat after which the broker is considered down; 0 disables
    /// heartbeats. Default 60.
    pub heartbeat_timeout_threshold: u64,
    /// How many times per `heartbeat_timeout_threshold` the heartbeat is checked.
    /// Default 3.
    pub heartbeat_rate: u32,
    /// Publish replies with the `mandatory` flag. Default true (deprecated, always on).
    pub direct_mandatory_flag: bool,
    /// Set `x-cancel-on-ha-failover` on consumers. Default false.
    pub enable_cancel_on_failover: bool,
    /// Stable reply and fanout queue names `<hostname>:<processname>:<counter>`.
    /// Default false.
    pub use_queue_manager: bool,
    /// Host name used by the queue manager. Default: this host's name.
    pub hostname: String,
    /// Process name used by the queue manager. Default: the executable's file name.
    pub processname: String,
    /// Use one stream queue for each fanout. Default false.
    pub rabbit_stream_fanout: bool,
    /// Declare durable queues (implied by `rabbit_quorum_queue`). Default false.
    pub amqp_durable_queues: bool,
    /// Declare auto-delete queues. Default false.
    pub amqp_auto_delete: bool,
}

impl Default for RabbitSection {
    fn default() -> Self {
        RabbitSection {
            rpc_conn_pool_size: 30,
            conn_pool_min_size: 2,
            conn_pool_ttl: 1200,
            ssl: false,
            ssl_version: String::new(),
            ssl_key_file: String::new(),
            ssl_cert_file: String::new(),
            ssl_ca_file: String::new(),
            ssl_enforce_hostname_verification: true,
            ssl_enforce_fips_mode: false,
            kombu_reconnect_delay: 1.0,
            kombu_reconnect_splay: 0.0,
            kombu_compression: None,
            kombu_missing_consumer_retry_timeout: 60,
            kombu_failover_strategy: "round-robin".to_string(),
            rabbit_login_method: "AMQPLAIN".to_string(),
            rabbit_retry_interval: 1,
            rabbit_retry_backoff: 2,
            rabbit_interval_max: 30,
            rabbit_ha_queues: false,
            rabbit_quorum_queue: false,
            rabbit_transient_quorum_queue: false,
            rabbit_quorum_delivery_limit: 0,
            rabbit_quorum_max_memory_length: 0,
            rabbit_quorum_max_memory_bytes: 0,
            rabbit_transient_queues_ttl: 1800,
            rabbit_qos_prefetch_count: 0,
            heartbeat_timeout_threshold: 60,
            heartbeat_rate: 3,
            direct_mandatory_flag: true,
            enable_cancel_on_failover: false,
            use_queue_manager: false,
            hostname: local_hostname(),
            processname: process_name(),
            rabbit_stream_fanout: false,
            amqp_durable_queues: false,
            amqp_auto_delete: false,
        }
    }
}

/// `[oslo_messaging_kafka]` options (`_drivers/kafka_driver/kafka_options.py`), plus this
/// project's extensions, marked as such.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KafkaSection {
    /// Consumer `max.partition.fetch.bytes`. Default 1048576.
    pub kafka_max_fetch_bytes: u64,
    /// Seconds a consumer poll waits. Default 1.0.
    pub kafka_consumer_timeout: f64,
    /// Consumer group of listeners without a pool. Default `oslo_messaging_consumer`.
    pub consumer_group: String,
    /// Producer batching delay in seconds (`linger.ms`). Default 0.0.
    pub producer_batch_timeout: f64,
    /// Producer batch size (`batch.num.messages`). Default 16384.
    pub producer_batch_size: u64,
    /// `none`, `gzip`, `snappy`, `lz4` or `zstd`. Default `none`.
    pub compression_codec: String,
    /// With `commit_before_dispatch`: commit in the background rather than each
    /// notification synchronously before its handler runs (oslo's meaning). In the
    /// default at-least-once mode offsets are committed in the background anyway.
    /// Default false.
    pub enable_auto_commit: bool,
    /// Records returned by one poll at most. Default 500.
    pub max_poll_records: usize,
    /// `PLAINTEXT`, `SASL_PLAINTEXT`, `SSL` or `SASL_SSL`. Default `PLAINTEXT`.
    pub security_protocol: String,
    /// SASL mechanism. Default `PLAIN`.
    pub sasl_mechanism: String,
    /// CA certificate file verifying the brokers. Default empty.
    pub ssl_cafile: String,
    /// Client certificate file. Default empty.
    pub ssl_client_cert_file: String,
    /// Client key file. Default empty.
    pub ssl_client_key_file: String,
    /// Password of the client key. Secret. Default empty.
    pub ssl_client_key_password: String,
    /// Extension: longest time the broker may hold a consumer's fetch waiting for data
    /// (librdkafka `fetch.wait.max.ms`), in milliseconds. Default 500.
    pub fetch_wait_max_ms: u64,
    /// Extension: commit a notification's offset before dispatching it, as oslo does
    /// (at most once), instead of after its handler settles it (at least once).
    /// Default false.
    pub commit_before_dispatch: bool,
    /// Extension: partitions of the topics the driver creates. Listeners of one group
    /// (and RPC servers of one topic) share work by partition, so this caps how many
    /// of them work at once. Default 4.
    pub topic_partitions: u32,
    /// Extension: replication factor of the topics the driver creates; -1 takes the
    /// broker's `default.replication.factor`. Default -1.
    pub topic_replication_factor: i32,
    /// Extension: seconds one delivery attempt may take (librdkafka
    /// `message.timeout.ms`) before `retry` decides on another. Default 30.
    pub producer_delivery_timeout: f64,
    /// Extension: seconds without heartbeats after which the group gives a
    /// listener's or server's partitions to the others (librdkafka
    /// `session.timeout.ms`). Default 45.
    pub consumer_session_timeout: f64,
    /// Extension: create missing topics through the admin API. When false, topics
    /// must exist already or be created by the broker when first asked for
    /// (`auto.create.topics.enable`), for clients not allowed to create topics.
    /// Default true.
    pub create_topics: bool,
    /// Extension: where a notification consumer group starts in a partition it has
    /// no committed offset for: `earliest` (the notifications kept since the topic
    /// was created, as a RabbitMQ queue declared by the notifier keeps them) or
    /// `latest` (only those sent after the group first gets the partition, as in
    /// oslo). Default `earliest`.
    pub auto_offset_reset: String,
    /// Extension: delete the transport's reply topic at cleanup. Turn it off on
    /// brokers whose topic deletion is unreliable (tansu 0.6 deletes every topic).
    /// Default true.
    pub delete_reply_topics: bool,
}

impl Default for KafkaSection {
    fn default() -> Self {
        KafkaSection {
            kafka_max_fetch_bytes: 1024 * 1024,
            kafka_consumer_timeout: 1.0,
            consumer_group: "oslo_messaging_consumer".to_string(),
            producer_batch_timeout: 0.0,
            producer_batch_size: 16384,
            compression_codec: "none".to_string(),
            enable_auto_commit: false,
            max_poll_records: 500,
            security_protocol: "PLAINTEXT".to_string(),
            sasl_mechanism: "PLAIN".to_string(),
            ssl_cafile: String::new(),
            ssl_client_cert_file: String::new(),
            ssl_client_key_file: String::new(),
            ssl_client_key_password: String::new(),
            fetch_wait_max_ms: 500,
            commit_before_dispatch: false,
            topic_partitions: 4,
            topic_replication_factor: -1,
            producer_delivery_timeout: 30.0,
            consumer_session_timeout: 45.0,
            create_topics: true,
            auto_offset_reset: "earliest".to_string(),
            delete_reply_topics: true,
        }
    }
}

impl fmt::Debug for KafkaSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let password = if self.ssl_client_key_password.is_empty() {
            ""
        } else {
            MASK
        };
        f.debug_struct("KafkaSection")
            .field("kafka_max_fetch_bytes", &self.kafka_max_fetch_bytes)
            .field("kafka_consumer_timeout", &self.kafka_consumer_timeout)
            .field("consumer_group", &self.consumer_group)
            .field("producer_batch_timeout", &self.producer_batch_timeout)
            .field("producer_batch_size", &self.producer_batch_size)
            .field("compression_codec", &self.compression_codec)
            .field("enable_auto_commit", &self.enable_auto_commit)
            .field("max_poll_records", &self.max_poll_records)
            .field("security_protocol", &self.security_protocol)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("ssl_cafile", &self.ssl_cafile)
            .field("ssl_client_cert_file", &self.ssl_client_cert_file)
            .field("ssl_client_key_file", &self.ssl_client_key_file)
            .field("ssl_client_key_password", &password)
            .field("fetch_wait_max_ms", &self.fetch_wait_max_ms)
            .field("commit_before_dispatch", &self.commit_before_dispatch)
            .field("topic_partitions", &self.topic_partitions)
            .field("topic_replication_factor", &self.topic_replication_factor)
            .field("producer_delivery_timeout", &self.producer_delivery_timeout)
            .field("consumer_session_timeout", &self.consumer_session_timeout)
            .field("create_topics", &self.create_topics)
            .field("auto_offset_reset", &self.auto_offset_reset)
            .field("delete_reply_topics", &self.delete_reply_topics)
            .finish()
    }
}

/// `[oslo_messaging_zmq]` options of the ZeroMQ driver as it was when oslo.messaging
/// removed it (`_drivers/zmq_driver/zmq_options.py` at `f2fd8d43^`). Most of them were
/// also read from `[DEFAULT]` under the same name, which is still accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ZmqSection {
    /// Address to bind: `*`, an interface or an IP. Default `*`.
    pub rpc_zmq_bind_address: String,
    /// Name service: `redis`, `sentinel` or `dummy`. Default `redis`.
    pub rpc_zmq_matchmaker: String,
    /// Number of ZeroMQ contexts. Default 1.
    pub rpc_zmq_contexts: u32,
    /// Ingress messages buffered per topic; unset for unlimited. Default unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_zmq_topic_backlog: Option<u64>,
    /// Directory of IPC sockets. Default `/var/run/openstack`.
    pub rpc_zmq_ipc_dir: String,
    /// This node's name (hostname, FQDN or IP). Default: this host's name.
    pub rpc_zmq_host: String,
    /// Seconds pending messages are kept after a socket closes; -1 forever, 0 not at
    /// all. Default -1. Old name: `[DEFAULT] rpc_cast_timeout`.
    pub zmq_linger: i64,
    /// Seconds a poll waits. Default 1.
    pub rpc_poll_timeout: u64,
    /// Seconds a name service record lives; negative for ever. Default 300.
    pub zmq_target_expire: i64,
    /// Seconds between refreshes of a name service record. Default 180.
    pub zmq_target_update: u64,
    /// Fanout over PUB/SUB (always through a proxy). Default false.
    pub use_pub_sub: bool,
    /// Send through a ROUTER proxy. Default false.
    pub use_router_proxy: bool,
    /// One connection per message for direct sends (without router proxy). Default
    /// false.
    pub use_dynamic_connections: bool,
    /// Extra connections per host for failover (dynamic connections). Default 2.
    pub zmq_failover_connections: u32,
    /// Lowest port of the random bind range. Default 49153.
    pub rpc_zmq_min_port: u16,
    /// Highest port of the random bind range (1 to 65536). Default 65536.
    pub rpc_zmq_max_port: u32,
    /// Attempts to find a free port. Default 100.
    pub rpc_zmq_bind_port_retries: u32,
    /// Payload serialization: `json` or `msgpack`. Default `json`.
    pub rpc_zmq_serialization: String,
    /// Do not queue messages for disconnected peers. Default true.
    pub zmq_immediate: bool,
    /// TCP keepalive: negative leaves the OS default, 0 off, positive on. Default -1.
    pub zmq_tcp_keepalive: i64,
    /// TCP keepalive idle time; -1 leaves the OS default. Default -1.
    pub zmq_tcp_keepalive_idle: i64,
    /// TCP keepalive probe count; -1 leaves the OS default. Default -1.
    pub zmq_tcp_keepalive_cnt: i64,
    /// TCP keepalive probe interval; -1 leaves the OS default. Default -1.
    pub zmq_tcp_keepalive_intvl: i64,
    /// Threads working concurrently in the driver. Default 100.
    pub rpc_thread_pool_size: usize,
    /// Seconds a sent or received message is tracked (deduplication). Default 300.
    pub rpc_message_ttl: u64,
    /// Wait for acknowledgements from receivers (proxy without PUB/SUB). Default false.
    pub rpc_use_acks: bool,
    /// Seconds to wait for an ack, multiplied after each retry. Default 15.
    pub rpc_ack_timeout_base: u64,
    /// Multiplier of the ack timeout after each retry. Default 2.
    pub rpc_ack_timeout_multiplier: u64,
    /// Send attempts when acks are on: N retries, 0 none, negative forever. Default 3.
    pub rpc_retry_attempts: i64,
    /// Publisher hosts to subscribe to instead of the name service's list. Default
    /// empty.
    pub subscribe_on: Vec<String>,
    /// This project's extension: messages queued for one peer before sends to it wait
    /// for room (and then fail). Default 1000.
    pub zmq_send_queue: usize,
    /// This project's extension: seconds a cast or notification waits for a receiver
    /// to be discovered and for room in its peer's send queue before it fails. A
    /// notification nobody listens for is kept this long by its notifier. Default 30.
    pub zmq_send_timeout: u64,
    /// This project's extension: `host:port` of a `messaging-zmq-proxy` ROUTER to send
    /// everything through when `use_router_proxy` is set. Default empty.
    pub zmq_proxy_router: String,
    /// This project's extension: `host:port` of the proxy's PUB socket, for fanout
    /// casts through the proxy. Default empty (fanout goes through the ROUTER, one
    /// copy per server).
    pub zmq_proxy_publisher: String,
    /// This project's extension: the static matchmaker's map, entries `name=host:port`
    /// where name is a topic, `topic.server`, `topic.priority` or `*` (any). Default
    /// empty.
    pub zmq_static_targets: Vec<String>,
}

impl Default for ZmqSection {
    fn default() -> Self {
        ZmqSection {
            rpc_zmq_bind_address: "*".to_string(),
            rpc_zmq_matchmaker: "redis".to_string(),
            rpc_zmq_contexts: 1,
            rpc_zmq_topic_backlog: None,
            rpc_zmq_ipc_dir: "/var/run/openstack".to_string(),
            rpc_zmq_host: local_hostname(),
            zmq_linger: -1,
            rpc_poll_timeout: 1,
            zmq_target_expire: 300,
            zmq_target_update: 180,
            use_pub_sub: false,
            use_router_proxy: false,
            use_dynamic_connections: false,
            zmq_failover_connections: 2,
            rpc_zmq_min_port: 49153,
            rpc_zmq_max_port: 65536,
            rpc_zmq_bind_port_retries: 100,
            rpc_zmq_serialization: "json".to_string(),
            zmq_immediate: true,
            zmq_tcp_keepalive: -1,
            zmq_tcp_keepalive_idle: -1,
            zmq_tcp_keepalive_cnt: -1,
            zmq_tcp_keepalive_intvl: -1,
            rpc_thread_pool_size: 100,
            rpc_message_ttl: 300,
            rpc_use_acks: false,
            rpc_ack_timeout_base: 15,
            rpc_ack_timeout_multiplier: 2,
            rpc_retry_attempts: 3,
            subscribe_on: Vec::new(),
            zmq_send_queue: 1000,
            zmq_send_timeout: 30,
            zmq_proxy_router: String::new(),
            zmq_proxy_publisher: String::new(),
            zmq_static_targets: Vec::new(),
        }
    }
}

/// `[oslo_messaging_metrics]` options (`_metrics/client.py`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsSection {
    /// Send RPC metrics to oslo.metrics. Default false.
    pub metrics_enabled: bool,
    /// Metrics buffered before sending. Default 1000.
    pub metrics_buffer_size: usize,
    /// Unix socket of the metrics collector. Default `/var/tmp/metrics_collector.sock`.
    pub metrics_socket_file: String,
    /// Process name reported with the metrics. Default empty.
    pub metrics_process_name: String,
    /// Seconds after the last send at which the sending thread stops. Default 10.
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

fn config_error(message: impl Into<String>) -> Error {
    Error::Config(crate::Detail::new(crate::ErrorKind::Config, message))
}

fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        let message = format!("cannot read {}: {e}", path.display());
        Error::Config(crate::Detail::new(crate::ErrorKind::Config, message).with_source(e))
    })
}

fn in_file(path: &Path, e: Error) -> Error {
    match e {
        Error::Config(message) => config_error(format!("{}: {message}", path.display())),
        other => other,
    }
}

impl Config {
    /// Reads an oslo.config-style INI text (`nova.conf` and the like).
    ///
    /// Only the messaging sections are read; see the [module documentation](self) for
    /// the rules. Errors are [`Error::Config`] naming the line, section and option.
    pub fn from_ini_str(text: &str) -> Result<Config> {
        let doc = ini::document(text, SECTIONS).map_err(config_error)?;
        Config::from_document(doc)
    }

    /// Reads an oslo.config-style INI file; see [`Config::from_ini_str`].
    pub fn from_ini_file(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        Config::from_ini_str(&read_file(path)?).map_err(|e| in_file(path, e))
    }

    /// Reads a TOML text: one table per section (`[DEFAULT]`,
    /// `[oslo_messaging_rabbit]`, ...), native TOML types, lists as arrays. Unknown
    /// tables are ignored; the other rules are those of the INI form.
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
            config_error(format!(
                "TOML syntax error{place}: {}",
                e.message().trim_end()
            ))
        })?;
        let mut doc = Document::new();
        for (name, value) in table {
            let section = normalize_section(&name);
            if !SECTIONS.contains(&section.as_str()) {
                continue;
            }
            let toml::Value::Table(options) = value else {
                return Err(config_error(format!(
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
                    value,
                });
            }
        }
        Config::from_document(doc)
    }

    /// Reads a TOML file; see [`Config::from_toml_str`].
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        Config::from_toml_str(&read_file(path)?).map_err(|e| in_file(path, e))
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

    fn from_document<'de, V>(mut doc: Document<V>) -> Result<Config>
    where
        V: serde::Deserializer<'de>,
        V::Error: fmt::Display,
    {
        doc.resolve_deprecated();
        doc.drop_removed();
        let config =
            Config::deserialize(DocumentDeserializer::new(doc)).map_err(|e| config_error(e.0))?;
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

    /// This configuration with a transport URL's query parameters laid over one driver
    /// section, as oslo's `ConfigOptsProxy` does: `rabbit://h/?rabbit_qos_prefetch_count=10`
    /// overrides `[oslo_messaging_rabbit] rabbit_qos_prefetch_count`. Each value is
    /// read with its option's own type; a parameter that is not an option of `section`
    /// (or one of `also_known`, options without a default) is an error naming it.
    ///
    /// ```
    /// use messaging_core::{Config, TransportUrl};
    /// let url: TransportUrl = "kafka://h:9092/?consumer_group=audit".parse()?;
    /// let config = Config::default().with_url_overrides("oslo_messaging_kafka", &url, &[])?;
    /// assert_eq!(config.kafka.consumer_group, "audit");
    /// # Ok::<(), messaging_core::Error>(())
    /// ```
    pub fn with_url_overrides(
        &self,
        section: &str,
        url: &crate::TransportUrl,
        also_known: &[&str],
    ) -> Result<Config> {
        if url.query.is_empty() {
            return Ok(self.clone());
        }
        let as_json = |c: &Config| serde_json::to_value(c).map_err(|e| config_error(e.to_string()));
        let section_of =
            |value: &mut serde_json::Value| -> Result<serde_json::Map<String, serde_json::Value>> {
                match value.get_mut(section).map(serde_json::Value::take) {
                    Some(serde_json::Value::Object(map)) => Ok(map),
                    _ => Err(config_error(format!("no section [{section}]"))),
                }
            };
        let mut merged = as_json(self)?;
        let mut overridden = section_of(&mut merged)?;
        let known = section_of(&mut as_json(&Config::default())?)?;
        for (key, value) in &url.query {
            if !known.contains_key(key) && !also_known.contains(&key.as_str()) {
                return Err(Error::InvalidUrl {
                    url: url.masked(),
                    reason: format!("query parameter {key:?} is not a [{section}] option"),
                });
            }
            let ini = format!("[{section}]\n{key} = {value}\n");
            let parsed = Config::from_ini_str(&ini).map_err(|e| Error::InvalidUrl {
                url: url.masked(),
                reason: format!("query parameter {key:?}: {e}"),
            })?;
            let typed = section_of(&mut as_json(&parsed)?)?
                .remove(key.as_str())
                .unwrap_or(serde_json::Value::Null);
            overridden.insert(key.clone(), typed);
        }
        merged[section] = serde_json::Value::Object(overridden);
        let config: Config = serde_json::from_value(merged)
            .map_err(|e| config_error(format!("[{section}] after URL overrides: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the `choices` and `min`/`max` limits oslo puts on some options. The
    /// loaders call it; call it again after changing fields by hand.
    pub fn validate(&self) -> Result<()> {
        fn choice(section: &str, option: &str, value: &str, choices: &[&str]) -> Result<()> {
            if choices.contains(&value) {
                Ok(())
            } else {
                Err(config_error(format!(
                    "invalid value for [{section}] {option}: expected one of {}, got {value:?}",
                    choices.join(", ")
                )))
            }
        }
        fn range(section: &str, option: &str, value: f64, min: f64, max: f64) -> Result<()> {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(config_error(format!(
                    "invalid value for [{section}] {option}: must be between {min} and {max}, got {value}"
                )))
            }
        }
        let r = &self.rabbit;
        range(
            RABBIT_SECTION,
            "rpc_conn_pool_size",
            r.rpc_conn_pool_size as f64,
            1.0,
            f64::INFINITY,
        )?;
        // amqpdriver.ACK_REQUEUE_EVERY_SECONDS_MAX * 0.9
        range(
            RABBIT_SECTION,
            "kombu_reconnect_delay",
            r.kombu_reconnect_delay,
            0.0,
            4.5,
        )?;
        range(
            RABBIT_SECTION,
            "kombu_reconnect_splay",
            r.kombu_reconnect_splay,
            0.0,
            f64::INFINITY,
        )?;
        choice(
            RABBIT_SECTION,
            "kombu_failover_strategy",
            &r.kombu_failover_strategy,
            &["round-robin", "shuffle"],
        )?;
        choice(
            RABBIT_SECTION,
            "rabbit_login_method",
            &r.rabbit_login_method,
            &["PLAIN", "AMQPLAIN", "EXTERNAL", "RABBIT-CR-DEMO"],
        )?;
        range(
            RABBIT_SECTION,
            "rabbit_retry_interval",
            r.rabbit_retry_interval as f64,
            1.0,
            f64::INFINITY,
        )?;
        range(
            RABBIT_SECTION,
            "rabbit_interval_max",
            r.rabbit_interval_max as f64,
            1.0,
            f64::INFINITY,
        )?;
        let k = &self.kafka;
        choice(
            KAFKA_SECTION,
            "compression_codec",
            &k.compression_codec,
            &["none", "gzip", "snappy", "lz4", "zstd"],
        )?;
        choice(
            KAFKA_SECTION,
            "security_protocol",
            &k.security_protocol,
            &["PLAINTEXT", "SASL_PLAINTEXT", "SSL", "SASL_SSL"],
        )?;
        choice(
            KAFKA_SECTION,
            "auto_offset_reset",
            &k.auto_offset_reset,
            &["earliest", "latest"],
        )?;
        let z = &self.zmq;
        choice(
            ZMQ_SECTION,
            "rpc_zmq_matchmaker",
            &z.rpc_zmq_matchmaker,
            &["redis", "sentinel", "dummy", "static"],
        )?;
        choice(
            ZMQ_SECTION,
            "rpc_zmq_serialization",
            &z.rpc_zmq_serialization,
            &["json", "msgpack"],
        )?;
        range(
            ZMQ_SECTION,
            "rpc_zmq_max_port",
            z.rpc_zmq_max_port as f64,
            1.0,
            65536.0,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
