//! The driver's settings: its section, `[oslo_messaging_kafka]` ([`KafkaSection`],
//! registered with the core's registry by [`register`](crate::register)), with the
//! transport URL's query parameters laid over it, the broker list and the SASL
//! credentials of the URL, and the librdkafka client settings they make.
//!
//! ```ini
//! [DEFAULT]
//! transport_url = rabbit://nova:secret@rabbit1:5672/
//!
//! [oslo_messaging_notifications]
//! driver = messagingv2
//! transport_url = kafka://kafka1:9092,kafka2:9092/
//!
//! [oslo_messaging_kafka]
//! consumer_group = ceilometer
//! compression_codec = lz4
//! security_protocol = SASL_SSL
//! sasl_mechanism = SCRAM-SHA-512
//! ssl_cafile = /etc/kafka/ca.pem
//! # Removed from oslo.messaging: ignored with a warning.
//! kafka_default_host = old-kafka
//! ```
//!
//! A query parameter overrides the option of its name for one transport:
//! `kafka://k1:9092/?consumer_group=audit`.

use std::fmt;
use std::time::Duration;

use messaging_core::config::{self, DriverSection, check_choice};
use messaging_core::{Config, Error, Result, TransportUrl};
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

/// The section's name.
const SECTION: &str = "oslo_messaging_kafka";

/// `[oslo_messaging_kafka]` options (`_drivers/kafka_driver/kafka_options.py`), plus this
/// project's extensions, marked as such, with their defaults.
///
/// Read it from a [`Config`] with [`Config::section`] (the driver lays the transport
/// URL's query over it, [`Config::section_with_url`]):
///
/// ```
/// use driver_kafka::KafkaSection;
/// use messaging_core::Config;
///
/// let conf = Config::from_ini_str(
///     "[oslo_messaging_kafka]\nconsumer_group = audit\nssl_client_key_password = hunter2\n",
/// )?;
/// let kafka: KafkaSection = conf.section()?;
/// assert_eq!(kafka.consumer_group, "audit");
/// // Debug output never shows the key's password.
/// assert!(!format!("{kafka:?}").contains("hunter2"));
///
/// // Or built by hand: the section is `#[non_exhaustive]`, so from its default.
/// let mut by_hand = KafkaSection::default();
/// by_hand.consumer_group = "audit".into();
/// by_hand.ssl_client_key_password = "hunter2".into();
/// assert_eq!(kafka, by_hand);
/// # Ok::<(), messaging_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
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
            "****"
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

impl DriverSection for KafkaSection {
    const SECTION: &'static str = SECTION;

    /// Options of oslo.messaging's Kafka driver that it has removed since.
    const REMOVED: &'static [&'static str] = &[
        "kafka_default_host",
        "kafka_default_port",
        "pool_size",
        "conn_pool_min_size",
        "conn_pool_ttl",
    ];

    const SECRETS: &'static [&'static str] = &["ssl_client_key_password"];

    fn validate(&self) -> Result<()> {
        check_choice(
            SECTION,
            "compression_codec",
            &self.compression_codec,
            &["none", "gzip", "snappy", "lz4", "zstd"],
        )?;
        check_choice(
            SECTION,
            "security_protocol",
            &self.security_protocol,
            &["PLAINTEXT", "SASL_PLAINTEXT", "SSL", "SASL_SSL"],
        )?;
        check_choice(
            SECTION,
            "auto_offset_reset",
            &self.auto_offset_reset,
            &["earliest", "latest"],
        )?;
        if self.topic_partitions == 0 {
            return Err(config::error(format!(
                "[{SECTION}] topic_partitions must be at least 1"
            )));
        }
        // Also refuses NaN, which no range contains.
        if !(self.producer_delivery_timeout.is_finite() && self.producer_delivery_timeout > 0.0) {
            return Err(config::error(format!(
                "[{SECTION}] producer_delivery_timeout must be a positive number of seconds"
            )));
        }
        Ok(())
    }
}

/// librdkafka's default port, used for URL hosts without one.
const DEFAULT_PORT: u16 = 9092;

/// The resolved options of one transport.
#[derive(Clone)]
pub struct KafkaOptions {
    /// `[oslo_messaging_kafka]` after URL overrides.
    pub kafka: KafkaSection,
    /// `[DEFAULT] control_exchange`: the exchange of RPC targets that name none.
    pub control_exchange: String,
    /// `bootstrap.servers`: the URL's hosts as `host:port`, IPv6 in brackets.
    pub brokers: String,
    /// The URL's virtual host, a suffix of every topic name (see the crate docs).
    pub virtual_host: Option<String>,
    /// SASL user and password, from the first URL host that has them (as oslo).
    credentials: Option<(String, String)>,
}

impl fmt::Debug for KafkaOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaOptions")
            .field("brokers", &self.brokers)
            .field("virtual_host", &self.virtual_host)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(user, _)| (user, "****")),
            )
            .field("kafka", &self.kafka)
            .finish()
    }
}

impl KafkaOptions {
    /// Resolves the options for `url` from `config`; a query parameter named like an
    /// `[oslo_messaging_kafka]` option overrides it, any other is an error naming it.
    pub fn resolve(url: &TransportUrl, config: &Config) -> Result<KafkaOptions> {
        let kafka: KafkaSection = config.section_with_url(url)?;
        let invalid = |reason: String| Error::InvalidUrl {
            url: url.masked(),
            reason,
        };
        let mut brokers = Vec::new();
        for host in &url.hosts {
            let name = host.hostname.as_deref().unwrap_or("");
            if name.is_empty() {
                return Err(invalid("a Kafka URL host needs a host name".into()));
            }
            let port = host.port.unwrap_or(DEFAULT_PORT);
            if name.contains(':') {
                brokers.push(format!("[{name}]:{port}"));
            } else {
                brokers.push(format!("{name}:{port}"));
            }
        }
        if brokers.is_empty() {
            return Err(invalid("a Kafka URL needs at least one broker host".into()));
        }
        let credentials = url
            .hosts
            .iter()
            .find_map(|h| match (&h.username, &h.password) {
                (Some(user), Some(password)) if !user.is_empty() => {
                    Some((user.clone(), password.clone()))
                }
                _ => None,
            });
        Ok(KafkaOptions {
            kafka,
            control_exchange: config.default.control_exchange.clone(),
            brokers: brokers.join(","),
            virtual_host: url.virtual_host.clone().filter(|v| !v.is_empty()),
            credentials,
        })
    }

    /// Settings every client of this transport shares: brokers, security, SASL, SSL.
    pub fn client_config(&self) -> ClientConfig {
        let k = &self.kafka;
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("security.protocol", k.security_protocol.to_lowercase())
            // Reconnect quickly after a broker restart, backing off to 10 s.
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "10000");
        // librdkafka's own debug contexts (e.g. `cgrp,topic,fetch`), for diagnosis;
        // its lines are logged under the `librdkafka` target.
        if let Ok(contexts) = std::env::var("MESSAGING_KAFKA_DEBUG") {
            config.set("debug", contexts);
        }
        if k.security_protocol.starts_with("SASL") {
            config.set("sasl.mechanisms", &k.sasl_mechanism);
            if let Some((user, password)) = &self.credentials {
                config
                    .set("sasl.username", user)
                    .set("sasl.password", password);
            }
        }
        for (key, value) in [
            ("ssl.ca.location", &k.ssl_cafile),
            ("ssl.certificate.location", &k.ssl_client_cert_file),
            ("ssl.key.location", &k.ssl_client_key_file),
            ("ssl.key.password", &k.ssl_client_key_password),
        ] {
            if !value.is_empty() {
                config.set(key, value);
            }
        }
        config
    }

    /// The SASL password of the URL, to keep out of error messages.
    pub(crate) fn password(&self) -> Option<&str> {
        self.credentials
            .as_ref()
            .map(|(_, password)| password.as_str())
    }

    /// Settings of the producer: oslo's batching and compression, and a bounded time
    /// per delivery attempt. Topics are never created by producing to them.
    pub fn producer_config(&self) -> ClientConfig {
        let k = &self.kafka;
        let mut config = self.client_config();
        config
            .set(
                "linger.ms",
                format!("{}", (k.producer_batch_timeout.max(0.0) * 1000.0)),
            )
            .set(
                "batch.num.messages",
                k.producer_batch_size.clamp(1, 1_000_000).to_string(),
            )
            .set("compression.codec", &k.compression_codec)
            .set(
                "message.timeout.ms",
                self.delivery_timeout().as_millis().to_string(),
            )
            .set("allow.auto.create.topics", "false");
        config
    }

    /// Settings of a consumer in `group`: fetch limits and wait, and offsets that the
    /// driver stores itself (after a handler settles, or before dispatch when
    /// `commit_before_dispatch` is set) and librdkafka commits in the background.
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        let k = &self.kafka;
        let session = Duration::from_secs_f64(k.consumer_session_timeout.clamp(1.0, 3600.0));
        let mut config = self.client_config();
        config
            .set("group.id", group)
            .set(
                "max.partition.fetch.bytes",
                k.kafka_max_fetch_bytes.to_string(),
            )
            .set("fetch.wait.max.ms", k.fetch_wait_max_ms.to_string())
            .set("session.timeout.ms", session.as_millis().to_string())
            // Well within the session timeout; frequent enough that members rejoin
            // a rebalance quickly (librdkafka's 3 s at the default session timeout).
            .set(
                "heartbeat.interval.ms",
                (session.as_millis() / 15).clamp(100, 3000).to_string(),
            )
            .set("enable.partition.eof", "false")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            // Where to start is decided by the driver when partitions are assigned.
            .set("auto.offset.reset", "earliest")
            .set("allow.auto.create.topics", "false");
        config
    }

    /// How long one delivery attempt may take.
    pub fn delivery_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.kafka.producer_delivery_timeout.clamp(0.001, 86_400.0))
    }

    /// How long one consumer poll waits (`kafka_consumer_timeout`).
    pub fn poll_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.kafka.kafka_consumer_timeout.clamp(0.001, 60.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(url: &str, ini: &str) -> Result<KafkaOptions> {
        let config = Config::from_ini_str(ini).unwrap();
        KafkaOptions::resolve(&url.parse().unwrap(), &config)
    }

    fn section(ini: &str) -> Result<KafkaSection> {
        Config::from_ini_str(ini).unwrap().section()
    }

    #[test]
    fn defaults_are_oslos() {
        let k = KafkaSection::default();
        assert_eq!(k.kafka_max_fetch_bytes, 1_048_576);
        assert_eq!(k.kafka_consumer_timeout, 1.0);
        assert_eq!(k.consumer_group, "oslo_messaging_consumer");
        assert_eq!(k.producer_batch_timeout, 0.0);
        assert_eq!(k.producer_batch_size, 16384);
        assert_eq!(k.compression_codec, "none");
        assert!(!k.enable_auto_commit);
        assert_eq!(k.max_poll_records, 500);
        assert_eq!(k.security_protocol, "PLAINTEXT");
        assert_eq!(k.sasl_mechanism, "PLAIN");
        assert_eq!(
            (
                &*k.ssl_cafile,
                &*k.ssl_client_cert_file,
                &*k.ssl_client_key_file,
                &*k.ssl_client_key_password
            ),
            ("", "", "", "")
        );
        k.validate().unwrap();
        assert_eq!(section("").unwrap(), k);
    }

    #[test]
    fn the_key_password_never_shows() {
        const SECRET: &str = "hunter2";
        let k = section(&format!(
            "[oslo_messaging_kafka]\nssl_client_key_password = {SECRET}\n"
        ))
        .unwrap();
        assert_eq!(k.ssl_client_key_password, SECRET);
        for shown in [format!("{k:?}"), format!("{k:#?}")] {
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(
                shown.contains("ssl_client_key_password: \"****\""),
                "{shown}"
            );
        }
        assert!(format!("{:?}", KafkaSection::default()).contains("ssl_client_key_password: \"\""));
        // Wrongly typed (only possible in TOML): reported without the value.
        let e = Config::from_toml_str(&format!(
            "[oslo_messaging_kafka]\nssl_client_key_password = [\"{SECRET}\"]\n"
        ))
        .unwrap()
        .section::<KafkaSection>()
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "invalid value for secret option [oslo_messaging_kafka] ssl_client_key_password"
            ),
            "{e}"
        );
        assert!(!e.contains(SECRET), "{e}");
        // A forgotten `=`: the unknown option is named without what follows the space.
        let e = section(&format!(
            "[oslo_messaging_kafka]\nssl_client_key_password {SECRET}:x\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("unknown option [oslo_messaging_kafka] ssl_client_key_password..."),
            "{e}"
        );
        assert!(!e.contains(SECRET), "{e}");
        let e = section(&format!(
            "[oslo_messaging_kafka]\nsecret_thing = {SECRET}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("unknown option [oslo_messaging_kafka] secret_thing (line 2)"),
            "{e}"
        );
        assert!(!e.contains(SECRET), "{e}");
    }

    #[test]
    fn bad_values_removed_options_choices_and_limits() {
        let e = section("[oslo_messaging_kafka]\nkafka_consumer_timeout = soon\n").unwrap_err();
        assert!(
            e.to_string().contains("[oslo_messaging_kafka] kafka_consumer_timeout (line 2): expected a number, got \"soon\""),
            "{e}"
        );
        let k = section(
            "[oslo_messaging_kafka]\nkafka_default_host = old\npool_size = 3\nconn_pool_ttl = 1\n",
        )
        .unwrap();
        assert_eq!(k, KafkaSection::default());
        for (text, want) in [
            ("compression_codec = brotli", "compression_codec"),
            ("security_protocol = TLS", "security_protocol"),
            ("auto_offset_reset = middle", "auto_offset_reset"),
            (
                "topic_partitions = 0",
                "topic_partitions must be at least 1",
            ),
            ("producer_delivery_timeout = 0", "producer_delivery_timeout"),
            (
                "producer_delivery_timeout = nan",
                "producer_delivery_timeout",
            ),
        ] {
            let e = section(&format!("[oslo_messaging_kafka]\n{text}\n")).unwrap_err();
            assert!(e.to_string().contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn brokers_credentials_and_virtual_host_come_from_the_url() {
        let o = resolve("kafka://u:s3cret@k1:9093,[::1],k3/vh", "").unwrap();
        assert_eq!(o.brokers, "k1:9093,[::1]:9092,k3:9092");
        assert_eq!(o.virtual_host.as_deref(), Some("vh"));
        let debug = format!("{o:?}");
        assert!(debug.contains("\"u\""), "{debug}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn url_query_overrides_the_file_and_unknown_parameters_are_named() {
        let o = resolve(
            "kafka://k/?consumer_group=audit&fetch_wait_max_ms=10",
            "[oslo_messaging_kafka]\nconsumer_group = other\nmax_poll_records = 7\n",
        )
        .unwrap();
        assert_eq!(o.kafka.consumer_group, "audit");
        assert_eq!(o.kafka.fetch_wait_max_ms, 10);
        assert_eq!(o.kafka.max_poll_records, 7);
        let e = resolve("kafka://u:s3cret@k/?nope=1", "").unwrap_err();
        assert!(e.to_string().contains("\"nope\""), "{e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let e = resolve("kafka://k/?compression_codec=brotli", "").unwrap_err();
        assert!(e.to_string().contains("compression_codec"), "{e}");
    }

    #[test]
    fn sasl_settings_and_ssl_files_reach_librdkafka() {
        let o = resolve(
            "kafka://alice:pw@k/",
            "[oslo_messaging_kafka]\nsecurity_protocol = SASL_SSL\nsasl_mechanism = SCRAM-SHA-512\nssl_cafile = /ca.pem\n",
        )
        .unwrap();
        let c = o.client_config();
        assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(c.get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(c.get("sasl.username"), Some("alice"));
        assert_eq!(c.get("sasl.password"), Some("pw"));
        assert_eq!(c.get("ssl.ca.location"), Some("/ca.pem"));
        let plain = resolve("kafka://alice:pw@k/", "").unwrap().client_config();
        assert_eq!(plain.get("sasl.username"), None);
    }

    #[test]
    fn producer_and_consumer_settings_follow_the_options() {
        let o = resolve(
            "kafka://k/?producer_batch_timeout=0.005&compression_codec=lz4&kafka_max_fetch_bytes=2048",
            "",
        )
        .unwrap();
        let p = o.producer_config();
        assert_eq!(p.get("linger.ms"), Some("5"));
        assert_eq!(p.get("compression.codec"), Some("lz4"));
        assert_eq!(p.get("message.timeout.ms"), Some("30000"));
        let c = o.consumer_config("g");
        assert_eq!(c.get("group.id"), Some("g"));
        assert_eq!(c.get("max.partition.fetch.bytes"), Some("2048"));
        assert_eq!(c.get("fetch.wait.max.ms"), Some("500"));
        assert_eq!(c.get("enable.auto.offset.store"), Some("false"));
    }

    #[test]
    fn a_url_without_hosts_is_refused() {
        let e = resolve("kafka:///vh", "").unwrap_err();
        assert!(e.to_string().contains("broker"), "{e}");
    }
}
