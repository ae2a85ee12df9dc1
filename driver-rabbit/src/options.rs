//! The driver's settings: its section, `[oslo_messaging_rabbit]` ([`RabbitSection`],
//! registered with the core's registry by [`register`](crate::register)), with the
//! transport URL's query parameters laid over it, as oslo's `ConfigOptsProxy` does,
//! then checked.
//!
//! ```ini
//! [DEFAULT]
//! transport_url = rabbit://nova:secret@rabbit1:5672,nova:secret@rabbit2:5672/
//!
//! [oslo_messaging_rabbit]
//! rabbit_quorum_queue = true
//! heartbeat_timeout_threshold = 30
//! # Old name of kombu_missing_consumer_retry_timeout: accepted with a warning.
//! kombu_reconnect_timeout = 20
//! # Removed from oslo.messaging: ignored with a warning.
//! rabbit_host = old-rabbit
//! # Accepted and ignored (see RabbitSection::IGNORED).
//! heartbeat_rate = 2
//! ```
//!
//! A query parameter overrides the option of its name for one transport:
//! `rabbit://h/?rabbit_qos_prefetch_count=10`.

use std::time::Duration;

use messaging_core::config::{self, Deprecated, DriverSection, Ignored, check_choice, check_range};
use messaging_core::{Config, Result, TransportUrl};
use serde::{Deserialize, Serialize};

/// The section's name.
const SECTION: &str = "oslo_messaging_rabbit";

/// oslo's `choices` of `rabbit_login_method`, all of which lapin speaks.
const LOGIN_METHODS: &[&str] = &["PLAIN", "AMQPLAIN", "EXTERNAL", "RABBIT-CR-DEMO"];

/// `[oslo_messaging_rabbit]` options (`_drivers/impl_rabbit.py` `rabbit_opts` and
/// `_drivers/amqp.py` `amqp_opts`), with oslo's defaults.
///
/// Read it from a [`Config`] with [`Config::section`] (the driver lays the transport
/// URL's query over it, [`Config::section_with_url`]):
///
/// ```
/// use driver_rabbit::RabbitSection;
/// use messaging_core::Config;
///
/// let conf = Config::from_ini_str("[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\n")?;
/// let rabbit: RabbitSection = conf.section()?;
/// assert!(rabbit.rabbit_quorum_queue);
/// assert_eq!(rabbit.heartbeat_timeout_threshold, 60);
///
/// // Or built by hand: the section is `#[non_exhaustive]`, so from its default.
/// let mut by_hand = RabbitSection::default();
/// by_hand.rabbit_quorum_queue = true;
/// assert_eq!(rabbit, by_hand);
/// # Ok::<(), messaging_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RabbitSection {
    /// Size of the RPC connection pool (at least 1). Default 30.
    pub rpc_conn_pool_size: usize,
    /// Pool size under which idle connections are not expired. Default 2. Ignored
    /// ([`RabbitSection::IGNORED`](DriverSection::IGNORED) says why).
    pub conn_pool_min_size: usize,
    /// Seconds an idle pooled connection lives. Default 1200. Ignored.
    pub conn_pool_ttl: u64,
    /// Connect over TLS. Default false.
    pub ssl: bool,
    /// TLS version (`TLSv1`, `SSLv23`, maybe `TLSv1_1`, `TLSv1_2`). Default empty.
    /// Ignored.
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
    /// Enforce OpenSSL FIPS mode. Default false (deprecated). Ignored.
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
    /// Default 3. Ignored.
    pub heartbeat_rate: u32,
    /// Publish replies with the `mandatory` flag. Default true (deprecated). Ignored:
    /// always on.
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
            hostname: config::local_hostname(),
            processname: config::process_name(),
            rabbit_stream_fanout: false,
            amqp_durable_queues: false,
            amqp_auto_delete: false,
        }
    }
}

impl DriverSection for RabbitSection {
    const SECTION: &'static str = SECTION;

    const DEPRECATED: &'static [Deprecated] = &[Deprecated::new(
        SECTION,
        "kombu_reconnect_timeout",
        "kombu_missing_consumer_retry_timeout",
    )];

    /// Options of oslo.messaging's rabbit driver that it has removed since (including
    /// removed deprecated names).
    const REMOVED: &'static [&'static str] = &[
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
    ];

    /// The options this driver reads and then ignores, and why.
    const IGNORED: &'static [Ignored] = &[
        Ignored::new(
            "conn_pool_min_size",
            "the publisher opens up to rpc_conn_pool_size channels on demand and never \
             expires them",
        ),
        Ignored::new(
            "conn_pool_ttl",
            "publishing channels live as long as the transport",
        ),
        Ignored::new(
            "ssl_version",
            "rustls negotiates TLS 1.2 or 1.3 and offers nothing older",
        ),
        Ignored::new(
            "ssl_enforce_fips_mode",
            "rustls has no OpenSSL FIPS mode to enforce",
        ),
        Ignored::new(
            "heartbeat_rate",
            "lapin sends heartbeats and watches the broker's on its own schedule",
        ),
        Ignored::new(
            "direct_mandatory_flag",
            "replies are always published with the mandatory flag (oslo's default)",
        ),
    ];

    fn validate(&self) -> Result<()> {
        check_range(
            SECTION,
            "rpc_conn_pool_size",
            self.rpc_conn_pool_size as f64,
            1.0,
            f64::INFINITY,
        )?;
        // amqpdriver.ACK_REQUEUE_EVERY_SECONDS_MAX * 0.9
        check_range(
            SECTION,
            "kombu_reconnect_delay",
            self.kombu_reconnect_delay,
            0.0,
            4.5,
        )?;
        check_range(
            SECTION,
            "kombu_reconnect_splay",
            self.kombu_reconnect_splay,
            0.0,
            f64::INFINITY,
        )?;
        check_choice(
            SECTION,
            "kombu_failover_strategy",
            &self.kombu_failover_strategy,
            &["round-robin", "shuffle"],
        )?;
        check_choice(
            SECTION,
            "rabbit_login_method",
            &self.rabbit_login_method,
            LOGIN_METHODS,
        )?;
        check_range(
            SECTION,
            "rabbit_retry_interval",
            self.rabbit_retry_interval as f64,
            1.0,
            f64::INFINITY,
        )?;
        check_range(
            SECTION,
            "rabbit_interval_max",
            self.rabbit_interval_max as f64,
            1.0,
            f64::INFINITY,
        )
    }
}

/// The resolved options of one transport.
#[derive(Debug, Clone)]
pub struct RabbitOptions {
    /// `[oslo_messaging_rabbit]` after URL overrides.
    pub rabbit: RabbitSection,
    /// `[DEFAULT] control_exchange`: the exchange of targets that name none.
    pub control_exchange: String,
    /// Message compression for what this driver writes.
    pub compression: Option<crate::compression::Compression>,
}

impl RabbitOptions {
    /// Resolves the options for `url` from `config`.
    ///
    /// A query parameter named like an `[oslo_messaging_rabbit]` option overrides it
    /// (`rabbit://h/?rabbit_qos_prefetch_count=10`); any other query parameter is an
    /// error naming it, as in oslo.
    pub fn resolve(url: &TransportUrl, config: &Config) -> Result<RabbitOptions> {
        let rabbit: RabbitSection = config.section_with_url(url)?;
        check(&rabbit)?;
        let compression = rabbit
            .kombu_compression
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(crate::compression::Compression::from_option)
            .transpose()?;
        Ok(RabbitOptions {
            rabbit,
            control_exchange: config.default.control_exchange.clone(),
            compression,
        })
    }

    /// `amqp_durable_queues or rabbit_quorum_queue`: durability of topic queues and
    /// exchanges.
    pub fn durable(&self) -> bool {
        self.rabbit.amqp_durable_queues || self.rabbit.rabbit_quorum_queue
    }

    /// Seconds of `x-expires` on reply and fanout queues, `None` when disabled.
    pub fn transient_ttl(&self) -> Option<Duration> {
        match self.rabbit.rabbit_transient_queues_ttl {
            0 => None,
            s => Some(Duration::from_secs(s)),
        }
    }

    /// How long a reply to a vanished reply queue keeps being retried.
    pub fn missing_consumer_retry(&self) -> Duration {
        Duration::from_secs(self.rabbit.kombu_missing_consumer_retry_timeout)
    }

    /// The pause before reconnecting after a lost connection:
    /// `kombu_reconnect_delay` plus a random share of `kombu_reconnect_splay`.
    pub fn reconnect_delay(&self) -> Duration {
        let splay = self.rabbit.kombu_reconnect_splay.max(0.0);
        let extra = if splay > 0.0 {
            rand::random::<f64>() * splay
        } else {
            0.0
        };
        Duration::from_secs_f64(self.rabbit.kombu_reconnect_delay.clamp(0.0, 4.5) + extra)
    }

    /// The waits between connection attempts: `rabbit_retry_interval`, growing by
    /// `rabbit_retry_backoff` per attempt, capped at `rabbit_interval_max`.
    pub fn retry_intervals(&self) -> impl Iterator<Item = Duration> + use<> {
        let start = self.rabbit.rabbit_retry_interval.max(1);
        let step = self.rabbit.rabbit_retry_backoff;
        let max = self.rabbit.rabbit_interval_max.max(1);
        std::iter::successors(Some(start.min(max)), move |s| Some((s + step).min(max)))
            .map(Duration::from_secs)
    }

    /// The AMQP heartbeat to negotiate, in seconds (0 disables it).
    pub fn heartbeat(&self) -> u16 {
        u16::try_from(self.rabbit.heartbeat_timeout_threshold).unwrap_or(u16::MAX)
    }
}

/// The combinations of options oslo refuses when the driver starts (each option's own
/// limits are [`RabbitSection::validate`]'s, checked whatever the transport).
fn check(rabbit: &RabbitSection) -> Result<()> {
    let bad = |message: &str| Err(config::error(format!("[{SECTION}] {message}")));
    if rabbit.rabbit_quorum_queue && rabbit.rabbit_ha_queues {
        return bad("rabbit_quorum_queue and rabbit_ha_queues cannot both be enabled");
    }
    // As oslo: a stream is read with a prefetch, and its exchange is the durable fanout
    // exchange of transient quorum queues.
    if rabbit.rabbit_stream_fanout && rabbit.rabbit_qos_prefetch_count == 0 {
        return bad(
            "rabbit_stream_fanout needs rabbit_qos_prefetch_count set to a value greater than 0",
        );
    }
    if rabbit.rabbit_stream_fanout && !rabbit.rabbit_transient_quorum_queue {
        return bad("rabbit_stream_fanout needs rabbit_transient_quorum_queue = true");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(url: &str, ini: &str) -> Result<RabbitOptions> {
        let config = Config::from_ini_str(ini).unwrap();
        RabbitOptions::resolve(&url.parse().unwrap(), &config)
    }

    fn section(ini: &str) -> Result<RabbitSection> {
        Config::from_ini_str(ini).unwrap().section()
    }

    #[test]
    fn defaults_are_oslos() {
        let r = RabbitSection::default();
        assert_eq!(
            (r.rpc_conn_pool_size, r.conn_pool_min_size, r.conn_pool_ttl),
            (30, 2, 1200)
        );
        assert!(!r.ssl);
        assert_eq!(
            (
                &*r.ssl_version,
                &*r.ssl_key_file,
                &*r.ssl_cert_file,
                &*r.ssl_ca_file
            ),
            ("", "", "", "")
        );
        assert!(r.ssl_enforce_hostname_verification);
        assert!(!r.ssl_enforce_fips_mode);
        assert_eq!(r.kombu_reconnect_delay, 1.0);
        assert_eq!(r.kombu_reconnect_splay, 0.0);
        assert_eq!(r.kombu_compression, None);
        assert_eq!(r.kombu_missing_consumer_retry_timeout, 60);
        assert_eq!(r.kombu_failover_strategy, "round-robin");
        assert_eq!(r.rabbit_login_method, "AMQPLAIN");
        assert_eq!(
            (
                r.rabbit_retry_interval,
                r.rabbit_retry_backoff,
                r.rabbit_interval_max
            ),
            (1, 2, 30)
        );
        assert!(!r.rabbit_ha_queues && !r.rabbit_quorum_queue && !r.rabbit_transient_quorum_queue);
        assert_eq!(
            (
                r.rabbit_quorum_delivery_limit,
                r.rabbit_quorum_max_memory_length,
                r.rabbit_quorum_max_memory_bytes
            ),
            (0, 0, 0)
        );
        assert_eq!(r.rabbit_transient_queues_ttl, 1800);
        assert_eq!(r.rabbit_qos_prefetch_count, 0);
        assert_eq!((r.heartbeat_timeout_threshold, r.heartbeat_rate), (60, 3));
        assert!(r.direct_mandatory_flag);
        assert!(!r.enable_cancel_on_failover && !r.use_queue_manager && !r.rabbit_stream_fanout);
        assert_eq!(r.hostname, config::local_hostname());
        assert_eq!(r.processname, config::process_name());
        assert!(!r.amqp_durable_queues && !r.amqp_auto_delete);
        r.validate().unwrap();
        assert_eq!(section("").unwrap(), r);
    }

    #[test]
    fn reads_a_nova_conf_section() {
        let text = "[DEFAULT]\ndebug = True\n[database]\nconnection = x\n\
                    [oslo_messaging_rabbit]\nrabbit_ha_queues = False\namqp_durable_queues = yes\n\
                    rabbit_quorum_queue = On\nrabbit_transient_quorum_queue = 1\n\
                    heartbeat_timeout_threshold = 30\nrabbit_qos_prefetch_count: 64\n\
                    kombu_reconnect_delay = 0.5\nrabbit_retry_backoff = 0\n\
                    kombu_failover_strategy = shuffle\nkombu_compression =\n";
        let r = section(text).unwrap();
        assert!(!r.rabbit_ha_queues);
        assert!(r.amqp_durable_queues);
        assert!(r.rabbit_quorum_queue);
        assert!(r.rabbit_transient_quorum_queue);
        assert_eq!(r.heartbeat_timeout_threshold, 30);
        assert_eq!(r.rabbit_qos_prefetch_count, 64);
        assert_eq!(r.kombu_reconnect_delay, 0.5);
        assert_eq!(r.rabbit_retry_backoff, 0);
        assert_eq!(r.kombu_failover_strategy, "shuffle");
        assert_eq!(r.kombu_compression, None);
        // Untouched options keep oslo's defaults.
        assert_eq!(r.rabbit_transient_queues_ttl, 1800);
        // The TOML form reads the same.
        let toml = Config::from_toml_str(
            "[oslo_messaging_rabbit]\nrabbit_ha_queues = false\namqp_durable_queues = true\n\
             rabbit_quorum_queue = true\nrabbit_transient_quorum_queue = true\n\
             heartbeat_timeout_threshold = 30\nrabbit_qos_prefetch_count = 64\n\
             kombu_reconnect_delay = 0.5\nrabbit_retry_backoff = 0\n\
             kombu_failover_strategy = \"shuffle\"\n",
        )
        .unwrap();
        assert_eq!(toml.section::<RabbitSection>().unwrap(), r);
    }

    #[test]
    fn deprecated_removed_and_unknown_options() {
        let r = section("[oslo_messaging_rabbit]\nkombu_reconnect_timeout = 20\n").unwrap();
        assert_eq!(r.kombu_missing_consumer_retry_timeout, 20);
        // The current name wins whatever the order.
        for text in [
            "[oslo_messaging_rabbit]\nkombu_reconnect_timeout = 20\nkombu_missing_consumer_retry_timeout = 40\n",
            "[oslo_messaging_rabbit]\nkombu_missing_consumer_retry_timeout = 40\nkombu_reconnect_timeout = 20\n",
        ] {
            assert_eq!(
                section(text).unwrap().kombu_missing_consumer_retry_timeout,
                40
            );
        }
        let r = section(
            "[oslo_messaging_rabbit]\nrabbit_host = old\nrabbit_password = x\n\
             heartbeat_in_pthread = true\nkombu_ssl_keyfile = /k\n",
        )
        .unwrap();
        assert_eq!(r, RabbitSection::default());
        let e = section("[DEFAULT]\n[oslo_messaging_rabbit]\nrabbit_qos_prefech_count = 10\n")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "configuration error: unknown option [oslo_messaging_rabbit] rabbit_qos_prefech_count (line 3)"
        );
        let e = section("[oslo_messaging_rabbit]\nssl = maybe\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "configuration error: invalid value for [oslo_messaging_rabbit] ssl (line 2): \
             expected a boolean (true/false, yes/no, on/off, 1/0), got \"maybe\""
        );
        let e =
            section("[oslo_messaging_rabbit]\nrabbit_qos_prefetch_count = 70000\n").unwrap_err();
        assert!(
            e.to_string().contains("from 0 to 65535, got \"70000\""),
            "{e}"
        );
    }

    #[test]
    fn choices_and_limits_are_checked() {
        for (text, want) in [
            (
                "kombu_failover_strategy = random",
                "invalid value for [oslo_messaging_rabbit] kombu_failover_strategy: \
                 expected one of round-robin, shuffle, got \"random\"",
            ),
            (
                "rabbit_login_method = amqplain",
                "[oslo_messaging_rabbit] rabbit_login_method",
            ),
            (
                "rpc_conn_pool_size = 0",
                "[oslo_messaging_rabbit] rpc_conn_pool_size: must be between 1",
            ),
            (
                "kombu_reconnect_delay = 5",
                "[oslo_messaging_rabbit] kombu_reconnect_delay: must be between 0 and 4.5",
            ),
            ("rabbit_retry_interval = 0", "rabbit_retry_interval"),
            ("rabbit_interval_max = 0", "rabbit_interval_max"),
            ("kombu_reconnect_splay = -1", "kombu_reconnect_splay"),
        ] {
            let e = section(&format!("[oslo_messaging_rabbit]\n{text}\n")).unwrap_err();
            assert!(e.to_string().contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn ignored_options_are_fields_the_driver_does_not_read() {
        let fields = [
            "conn_pool_min_size",
            "conn_pool_ttl",
            "ssl_version",
            "ssl_enforce_fips_mode",
            "heartbeat_rate",
            "direct_mandatory_flag",
        ];
        let ignored: Vec<&str> = RabbitSection::IGNORED.iter().map(|i| i.name).collect();
        assert_eq!(ignored, fields);
        // Each is still typed.
        let r = section(
            "[oslo_messaging_rabbit]\nconn_pool_min_size = 5\nconn_pool_ttl = 10\n\
             ssl_version = TLSv1_2\nssl_enforce_fips_mode = true\nheartbeat_rate = 2\n\
             direct_mandatory_flag = false\n",
        )
        .unwrap();
        assert_eq!((r.conn_pool_min_size, r.heartbeat_rate), (5, 2));
        let e = section("[oslo_messaging_rabbit]\nheartbeat_rate = often\n").unwrap_err();
        assert!(e.to_string().contains("heartbeat_rate (line 2)"), "{e}");
    }

    #[test]
    fn url_query_overrides_the_file() {
        let o = resolve(
            "rabbit://h/?rabbit_qos_prefetch_count=7&amqp_durable_queues=yes",
            "[oslo_messaging_rabbit]\nrabbit_qos_prefetch_count = 3\nheartbeat_timeout_threshold = 10\n",
        )
        .unwrap();
        assert_eq!(o.rabbit.rabbit_qos_prefetch_count, 7);
        assert!(o.rabbit.amqp_durable_queues);
        assert!(o.durable());
        assert_eq!(o.heartbeat(), 10);
    }

    #[test]
    fn unknown_or_bad_query_parameters_are_named() {
        let e = resolve("rabbit://u:secret@h/?nope=1", "").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("\"nope\""), "{text}");
        assert!(!text.contains("secret"), "{text}");
        let e = resolve("rabbit://h/?rabbit_qos_prefetch_count=lots", "").unwrap_err();
        assert!(e.to_string().contains("rabbit_qos_prefetch_count"), "{e}");
    }

    #[test]
    fn refused_combinations() {
        let e = resolve(
            "rabbit://h/",
            "[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\nrabbit_ha_queues = true\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("rabbit_ha_queues"), "{e}");
        let e = resolve("rabbit://h/?rabbit_login_method=KERBEROS", "").unwrap_err();
        assert!(e.to_string().contains("KERBEROS"), "{e}");
        let e = resolve("rabbit://h/?kombu_compression=lz4", "").unwrap_err();
        assert!(e.to_string().contains("lz4"), "{e}");
        let e = resolve(
            "rabbit://h/?rabbit_stream_fanout=true&rabbit_transient_quorum_queue=true",
            "",
        )
        .unwrap_err();
        assert!(e.to_string().contains("rabbit_qos_prefetch_count"), "{e}");
        let e = resolve(
            "rabbit://h/?rabbit_stream_fanout=true&rabbit_qos_prefetch_count=1",
            "",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("rabbit_transient_quorum_queue"),
            "{e}"
        );
        resolve(
            "rabbit://h/?rabbit_stream_fanout=true&rabbit_qos_prefetch_count=1&rabbit_transient_quorum_queue=true",
            "",
        )
        .unwrap();
    }

    #[test]
    fn retry_intervals_grow_linearly_to_the_cap() {
        let o = resolve(
            "rabbit://h/",
            "[oslo_messaging_rabbit]\nrabbit_retry_interval = 1\nrabbit_retry_backoff = 2\nrabbit_interval_max = 6\n",
        )
        .unwrap();
        let secs: Vec<u64> = o.retry_intervals().take(5).map(|d| d.as_secs()).collect();
        assert_eq!(secs, [1, 3, 5, 6, 6]);
    }

    #[test]
    fn transient_ttl_zero_disables_expiry() {
        let o = resolve("rabbit://h/?rabbit_transient_queues_ttl=0", "").unwrap();
        assert_eq!(o.transient_ttl(), None);
        let o = resolve("rabbit://h/", "").unwrap();
        assert_eq!(o.transient_ttl(), Some(Duration::from_secs(1800)));
    }
}
