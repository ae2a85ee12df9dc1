//! The driver's settings: `[oslo_messaging_kafka]` with the transport URL's query
//! parameters laid over it, the broker list and the SASL credentials of the URL, and
//! the librdkafka client settings they make.

use std::fmt;
use std::time::Duration;

use messaging_core::config::KafkaSection;
use messaging_core::{Config, Error, Result, TransportUrl};
use rdkafka::ClientConfig;

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
        let kafka = config
            .with_url_overrides("oslo_messaging_kafka", url, &[])?
            .kafka;
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
        if kafka.topic_partitions == 0 {
            return Err(Error::Config(
                "[oslo_messaging_kafka] topic_partitions must be at least 1".into(),
            ));
        }
        if !kafka.producer_delivery_timeout.is_finite() || kafka.producer_delivery_timeout <= 0.0 {
            return Err(Error::Config(
                "[oslo_messaging_kafka] producer_delivery_timeout must be a positive number of seconds".into(),
            ));
        }
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
