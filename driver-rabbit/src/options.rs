//! The driver's settings: `[oslo_messaging_rabbit]` with the transport URL's query
//! parameters laid over it, as oslo's `ConfigOptsProxy` does, then checked.

use std::time::Duration;

use messaging_core::config::RabbitSection;
use messaging_core::{Config, Error, Result, TransportUrl};

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
        let rabbit = config
            .with_url_overrides("oslo_messaging_rabbit", url, &["kombu_compression"])?
            .rabbit;
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

/// The combinations oslo refuses, and the features this driver does not offer.
fn check(rabbit: &RabbitSection) -> Result<()> {
    let bad = |message: &str| {
        Err(Error::Config(
            format!("[oslo_messaging_rabbit] {message}").into(),
        ))
    };
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
    match rabbit.kombu_failover_strategy.as_str() {
        "round-robin" | "shuffle" => {}
        other => {
            return bad(&format!(
                "kombu_failover_strategy must be round-robin or shuffle, not {other:?}"
            ));
        }
    }
    crate::connection::login_mechanism(&rabbit.rabbit_login_method)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(url: &str, ini: &str) -> Result<RabbitOptions> {
        let config = Config::from_ini_str(ini).unwrap();
        RabbitOptions::resolve(&url.parse().unwrap(), &config)
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
