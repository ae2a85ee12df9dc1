//! [`ZmqOptions`]: the `[oslo_messaging_zmq]` options with the URL's query laid over
//! them, and what the URL's scheme says about the matchmaker.

use std::sync::Arc;
use std::time::Duration;

use messaging_core::config::ZmqSection;
use messaging_core::{Config, Error, Result, TransportUrl};

use crate::matchmaker::{InProcess, Matchmaker, Redis, StaticMap};

/// Which name service a transport uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchmakerKind {
    /// [`InProcess`] (`zmq+dummy://`, `rpc_zmq_matchmaker = dummy`).
    InProcess,
    /// [`StaticMap`] (`zmq+static://`, `rpc_zmq_matchmaker = static`).
    Static,
    /// [`Redis`] (`zmq+redis://host:port`, `rpc_zmq_matchmaker = redis`).
    Redis,
}

/// Everything the driver reads from its configuration.
#[derive(Debug, Clone)]
pub struct ZmqOptions {
    /// `[oslo_messaging_zmq]` after URL overrides.
    pub zmq: ZmqSection,
    /// The exchange of targets that name none.
    pub control_exchange: String,
    /// The default call timeout.
    pub rpc_response_timeout: Duration,
    /// The name service.
    pub matchmaker: MatchmakerKind,
    /// The URL (for the Redis hosts).
    pub url: TransportUrl,
}

impl ZmqOptions {
    /// The options of a transport on `url`.
    pub fn resolve(url: &TransportUrl, config: &Config) -> Result<ZmqOptions> {
        let config = config.with_url_overrides("oslo_messaging_zmq", url, &[])?;
        let zmq = config.zmq;
        let bad_url = |reason: String| Error::InvalidUrl {
            url: url.masked(),
            reason,
        };
        let name = match url.transport.split_once('+') {
            Some((_, name)) => name.to_string(),
            None => zmq.rpc_zmq_matchmaker.clone(),
        };
        let matchmaker = match name.as_str() {
            "dummy" => MatchmakerKind::InProcess,
            "static" => MatchmakerKind::Static,
            "redis" => MatchmakerKind::Redis,
            "sentinel" => {
                return Err(bad_url(
                    "the Redis Sentinel matchmaker is not supported; use zmq+redis:// with \
                     several hosts (registrations are written to every one)"
                        .into(),
                ));
            }
            other => {
                return Err(bad_url(format!(
                    "unknown matchmaker {other:?}: expected zmq+redis, zmq+static or zmq+dummy"
                )));
            }
        };
        if zmq.use_router_proxy && zmq.zmq_proxy_router.is_empty() {
            return Err(Error::Config(
                "[oslo_messaging_zmq] use_router_proxy needs zmq_proxy_router (host:port of \
                 messaging-zmq-proxy's router)"
                    .into(),
            ));
        }
        if u32::from(zmq.rpc_zmq_min_port) > zmq.rpc_zmq_max_port {
            return Err(Error::Config(
                format!(
                    "[oslo_messaging_zmq] rpc_zmq_min_port {} is above rpc_zmq_max_port {}",
                    zmq.rpc_zmq_min_port, zmq.rpc_zmq_max_port
                )
                .into(),
            ));
        }
        if zmq.zmq_send_queue == 0 {
            return Err(Error::Config(
                "[oslo_messaging_zmq] zmq_send_queue must be at least 1".into(),
            ));
        }
        Ok(ZmqOptions {
            control_exchange: config.default.control_exchange,
            rpc_response_timeout: Duration::from_secs(config.default.rpc_response_timeout),
            matchmaker,
            url: url.clone(),
            zmq,
        })
    }

    /// The name service these options name.
    pub fn open_matchmaker(&self) -> Result<Arc<dyn Matchmaker>> {
        Ok(match self.matchmaker {
            MatchmakerKind::InProcess => Arc::new(InProcess::shared()),
            MatchmakerKind::Static => {
                Arc::new(StaticMap::from_entries(&self.zmq.zmq_static_targets)?)
            }
            MatchmakerKind::Redis => Arc::new(Redis::new(&self.url)?),
        })
    }

    /// How long a registration lives (`zmq_target_expire`; negative: for ever).
    pub fn registration_ttl(&self) -> Option<Duration> {
        u64::try_from(self.zmq.zmq_target_expire)
            .ok()
            .map(Duration::from_secs)
    }

    /// How often registrations are renewed: `zmq_target_update`, but at most half
    /// their TTL, so a registration never lapses while its node lives (at least 1 s).
    pub fn registration_refresh(&self) -> Duration {
        let every = Duration::from_secs(self.zmq.zmq_target_update);
        let every = match self.registration_ttl() {
            Some(ttl) => every.min(ttl / 2),
            None => every,
        };
        every.max(Duration::from_secs(1))
    }

    /// How long a cast or notification waits for a receiver and for queue room.
    pub fn send_timeout(&self) -> Duration {
        Duration::from_secs(self.zmq.zmq_send_timeout)
    }

    /// The host to bind (`*` is every interface).
    pub fn bind_host(&self) -> &str {
        match self.zmq.rpc_zmq_bind_address.as_str() {
            "*" | "" => "0.0.0.0",
            host => host,
        }
    }

    /// The ports to try binding, inclusive (`rpc_zmq_max_port` 65536 means 65535).
    pub fn port_range(&self) -> (u16, u16) {
        let max = u16::try_from(self.zmq.rpc_zmq_max_port).unwrap_or(u16::MAX);
        (self.zmq.rpc_zmq_min_port, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(url: &str) -> Result<ZmqOptions> {
        ZmqOptions::resolve(&url.parse().unwrap(), &Config::default())
    }

    #[test]
    fn the_scheme_picks_the_matchmaker() {
        assert_eq!(
            resolve("zmq+redis://h:6379").unwrap().matchmaker,
            MatchmakerKind::Redis
        );
        assert_eq!(
            resolve("zmq+static://").unwrap().matchmaker,
            MatchmakerKind::Static
        );
        assert_eq!(
            resolve("zmq+dummy://").unwrap().matchmaker,
            MatchmakerKind::InProcess
        );
        assert_eq!(
            resolve("zmq://?rpc_zmq_matchmaker=dummy")
                .unwrap()
                .matchmaker,
            MatchmakerKind::InProcess
        );
        // oslo's default is Redis.
        assert_eq!(resolve("zmq://").unwrap().matchmaker, MatchmakerKind::Redis);
        let e = resolve("zmq+sentinel://:pw@h:26379")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Sentinel") && !e.contains("pw"), "{e}");
        let e = resolve("zmq+etcd://h").unwrap_err().to_string();
        assert!(e.contains("etcd"), "{e}");
    }

    #[test]
    fn bad_options_are_named() {
        let e = resolve("zmq+dummy://?use_router_proxy=true")
            .unwrap_err()
            .to_string();
        assert!(e.contains("zmq_proxy_router"), "{e}");
        let e = resolve("zmq+dummy://?rpc_zmq_min_port=6000&rpc_zmq_max_port=5000")
            .unwrap_err()
            .to_string();
        assert!(e.contains("rpc_zmq_min_port"), "{e}");
        let e = resolve("zmq+dummy://?no_such=1").unwrap_err().to_string();
        assert!(e.contains("no_such"), "{e}");
    }

    #[test]
    fn ports_and_hosts() {
        let o = resolve("zmq+dummy://?rpc_zmq_min_port=7000&rpc_zmq_max_port=65536").unwrap();
        assert_eq!(o.port_range(), (7000, 65535));
        assert_eq!(o.bind_host(), "0.0.0.0");
        assert_eq!(o.registration_ttl(), Some(Duration::from_secs(300)));
        assert_eq!(o.registration_refresh(), Duration::from_secs(150));
        let o = resolve("zmq+dummy://?zmq_target_expire=30").unwrap();
        assert_eq!(o.registration_refresh(), Duration::from_secs(15));
        let o = resolve("zmq+dummy://?zmq_target_expire=-1").unwrap();
        assert_eq!(o.registration_ttl(), None);
        assert_eq!(o.registration_refresh(), Duration::from_secs(180));
    }
}
