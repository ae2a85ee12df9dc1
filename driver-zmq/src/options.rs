//! The driver's settings: its section, `[oslo_messaging_zmq]` ([`ZmqSection`],
//! registered with the core's registry by [`register`](crate::register)), and
//! [`ZmqOptions`]: that section with the URL's query laid over it, and what the URL's
//! scheme says about the matchmaker.
//!
//! ```ini
//! [DEFAULT]
//! transport_url = zmq+redis://10.0.0.2:6379/
//! # The old home of most zmq options: still read, the [oslo_messaging_zmq] one wins.
//! rpc_zmq_host = compute7.example.org
//!
//! [oslo_messaging_zmq]
//! rpc_zmq_min_port = 50000
//! rpc_zmq_max_port = 50100
//! zmq_target_expire = 60
//! # Accepted and ignored (see ZmqSection::IGNORED).
//! rpc_zmq_contexts = 2
//! ```
//!
//! A query parameter overrides the option of its name for one transport:
//! `zmq+redis://10.0.0.2:6379/?zmq_target_expire=30`.

use std::sync::Arc;
use std::time::Duration;

use messaging_core::config::{self, Deprecated, DriverSection, Ignored, check_choice, check_range};
use messaging_core::{Config, Error, Result, TransportUrl};
use serde::{Deserialize, Serialize};

/// The section's name.
const SECTION: &str = "oslo_messaging_zmq";

/// `[oslo_messaging_zmq]` options of the ZeroMQ driver as it was when oslo.messaging
/// removed it (`_drivers/zmq_driver/zmq_options.py` at `f2fd8d43^`). Most of them were
/// also read from `[DEFAULT]` under the same name, which is still accepted. Many are
/// accepted and ignored by this driver, which works differently:
/// [`ZmqSection::IGNORED`](DriverSection::IGNORED) lists them with the reason.
///
/// Read it from a [`Config`] with [`Config::section`] (the driver lays the transport
/// URL's query over it, [`Config::section_with_url`]):
///
/// ```
/// use driver_zmq::ZmqSection;
/// use messaging_core::Config;
///
/// let conf = Config::from_ini_str(
///     "[DEFAULT]\nrpc_zmq_host = node7\n[oslo_messaging_zmq]\nzmq_target_expire = 60\n",
/// )?;
/// let zmq: ZmqSection = conf.section()?;
/// assert_eq!(zmq.rpc_zmq_host, "node7");
/// assert_eq!(zmq.zmq_target_expire, 60);
///
/// // Or built by hand: the section is `#[non_exhaustive]`, so from its default.
/// let mut by_hand = ZmqSection::default();
/// by_hand.rpc_zmq_host = "node7".into();
/// by_hand.zmq_target_expire = 60;
/// assert_eq!(zmq, by_hand);
/// # Ok::<(), messaging_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
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
            rpc_zmq_host: config::local_hostname(),
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

/// A zmq option that oslo.config also read from `[DEFAULT]`
/// (`deprecated_group='DEFAULT'` in `zmq_options.py`).
const fn from_default(name: &'static str) -> Deprecated {
    Deprecated::new("DEFAULT", name, name)
}

/// Why the options of oslo's acknowledgement scheme are ignored.
const NO_ACKS: &str = "acknowledgements are always part of this driver's protocol (a node \
                       answers each cast and notification it takes), and zmq_send_timeout \
                       bounds the tries";

/// Why the TCP keepalive options are ignored.
const NO_KEEPALIVE: &str = "the zeromq crate sets no TCP keepalive options";

impl DriverSection for ZmqSection {
    const SECTION: &'static str = SECTION;

    const DEPRECATED: &'static [Deprecated] = &[
        Deprecated::new("DEFAULT", "rpc_cast_timeout", "zmq_linger"),
        from_default("rpc_zmq_bind_address"),
        from_default("rpc_zmq_matchmaker"),
        from_default("rpc_zmq_contexts"),
        from_default("rpc_zmq_topic_backlog"),
        from_default("rpc_zmq_ipc_dir"),
        from_default("rpc_zmq_host"),
        from_default("rpc_poll_timeout"),
        from_default("zmq_target_expire"),
        from_default("zmq_target_update"),
        from_default("use_pub_sub"),
        from_default("use_router_proxy"),
        from_default("rpc_zmq_min_port"),
        from_default("rpc_zmq_max_port"),
        from_default("rpc_zmq_bind_port_retries"),
        from_default("rpc_zmq_serialization"),
    ];

    /// Options of oslo's ZeroMQ driver that it had removed before removing the driver.
    const REMOVED: &'static [&'static str] = &[
        "rpc_zmq_port",
        "rpc_zmq_concurrency",
        "rpc_zmq_native",
        "rpc_zmq_all_req_rep",
        "rpc_zmq_linger",
        "direct_over_proxy",
        "zmq_use_broker",
    ];

    /// The options this driver reads and then ignores, and why.
    const IGNORED: &'static [Ignored] = &[
        Ignored::new(
            "rpc_zmq_contexts",
            "the zeromq crate has no contexts: sockets run on the tokio runtime",
        ),
        Ignored::new(
            "rpc_zmq_topic_backlog",
            "each server and listener takes at most 1024 messages ahead of its handlers, \
             and each connection queues zmq_send_queue",
        ),
        Ignored::new(
            "rpc_zmq_ipc_dir",
            "nodes talk over TCP only: there are no IPC sockets",
        ),
        Ignored::new(
            "zmq_linger",
            "what a connection still holds when its transport stops is dropped; senders \
             learn of it from their own timeout",
        ),
        Ignored::new(
            "rpc_poll_timeout",
            "sockets are read by async tasks, not polled",
        ),
        Ignored::new(
            "use_pub_sub",
            "fanout goes through the proxy's PUB socket when zmq_proxy_publisher is set, \
             else to every node directly",
        ),
        Ignored::new(
            "use_dynamic_connections",
            "each peer has one long-lived connection",
        ),
        Ignored::new(
            "zmq_failover_connections",
            "each peer has one long-lived connection",
        ),
        Ignored::new(
            "rpc_zmq_serialization",
            "messages are oslo's JSON, the wire format this driver defines",
        ),
        Ignored::new(
            "zmq_immediate",
            "each peer's send queue is bounded by zmq_send_queue instead",
        ),
        Ignored::new("zmq_tcp_keepalive", NO_KEEPALIVE),
        Ignored::new("zmq_tcp_keepalive_idle", NO_KEEPALIVE),
        Ignored::new("zmq_tcp_keepalive_cnt", NO_KEEPALIVE),
        Ignored::new("zmq_tcp_keepalive_intvl", NO_KEEPALIVE),
        Ignored::new(
            "rpc_thread_pool_size",
            "requests run on the tokio runtime, at most [DEFAULT] \
             executor_thread_pool_size at a time per server",
        ),
        Ignored::new(
            "rpc_message_ttl",
            "a node recognises a notification sent again among those it took last (a \
             count, not a time)",
        ),
        Ignored::new("rpc_use_acks", NO_ACKS),
        Ignored::new("rpc_ack_timeout_base", NO_ACKS),
        Ignored::new("rpc_ack_timeout_multiplier", NO_ACKS),
        Ignored::new("rpc_retry_attempts", NO_ACKS),
        Ignored::new(
            "subscribe_on",
            "fanout receivers are found through the matchmaker",
        ),
    ];

    fn validate(&self) -> Result<()> {
        check_choice(
            SECTION,
            "rpc_zmq_matchmaker",
            &self.rpc_zmq_matchmaker,
            &["redis", "sentinel", "dummy", "static"],
        )?;
        check_choice(
            SECTION,
            "rpc_zmq_serialization",
            &self.rpc_zmq_serialization,
            &["json", "msgpack"],
        )?;
        check_range(
            SECTION,
            "rpc_zmq_max_port",
            self.rpc_zmq_max_port.into(),
            1.0,
            65536.0,
        )?;
        if u32::from(self.rpc_zmq_min_port) > self.rpc_zmq_max_port {
            return Err(config::error(format!(
                "[{SECTION}] rpc_zmq_min_port {} is above rpc_zmq_max_port {}",
                self.rpc_zmq_min_port, self.rpc_zmq_max_port
            )));
        }
        if self.zmq_send_queue == 0 {
            return Err(config::error(format!(
                "[{SECTION}] zmq_send_queue must be at least 1"
            )));
        }
        Ok(())
    }
}

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
        let zmq: ZmqSection = config.section_with_url(url)?;
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
            return Err(config::error(format!(
                "[{SECTION}] use_router_proxy needs zmq_proxy_router (host:port of \
                 messaging-zmq-proxy's router)"
            )));
        }
        Ok(ZmqOptions {
            control_exchange: config.default.control_exchange.clone(),
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

    fn section(ini: &str) -> Result<ZmqSection> {
        Config::from_ini_str(ini).unwrap().section()
    }

    #[test]
    fn defaults_are_oslos() {
        let z = ZmqSection::default();
        assert_eq!(z.rpc_zmq_matchmaker, "redis");
        assert_eq!(z.rpc_zmq_host, config::local_hostname());
        assert_eq!(z.rpc_zmq_bind_address, "*");
        assert_eq!(z.rpc_zmq_contexts, 1);
        assert_eq!(z.rpc_zmq_topic_backlog, None);
        assert_eq!(z.rpc_zmq_ipc_dir, "/var/run/openstack");
        assert_eq!((z.rpc_zmq_min_port, z.rpc_zmq_max_port), (49153, 65536));
        assert_eq!(z.rpc_zmq_bind_port_retries, 100);
        assert_eq!((z.zmq_target_expire, z.zmq_target_update), (300, 180));
        assert!(!z.use_pub_sub && !z.use_router_proxy && !z.use_dynamic_connections);
        assert_eq!(z.zmq_failover_connections, 2);
        assert_eq!(z.rpc_zmq_serialization, "json");
        assert_eq!((z.zmq_linger, z.rpc_poll_timeout), (-1, 1));
        assert!(z.zmq_immediate);
        assert_eq!(
            (
                z.zmq_tcp_keepalive,
                z.zmq_tcp_keepalive_idle,
                z.zmq_tcp_keepalive_cnt,
                z.zmq_tcp_keepalive_intvl
            ),
            (-1, -1, -1, -1)
        );
        assert_eq!((z.rpc_thread_pool_size, z.rpc_message_ttl), (100, 300));
        assert!(!z.rpc_use_acks);
        assert_eq!(
            (
                z.rpc_ack_timeout_base,
                z.rpc_ack_timeout_multiplier,
                z.rpc_retry_attempts
            ),
            (15, 2, 3)
        );
        assert!(z.subscribe_on.is_empty());
        z.validate().unwrap();
        assert_eq!(section("").unwrap(), z);
    }

    #[test]
    fn old_default_section_names_are_read() {
        let z = section(
            "[DEFAULT]\nrpc_cast_timeout = 5\nrpc_zmq_host = node7\nuse_pub_sub = yes\n\
             [oslo_messaging_zmq]\nsubscribe_on =\nrpc_zmq_topic_backlog = 7\n",
        )
        .unwrap();
        assert_eq!(z.zmq_linger, 5);
        assert_eq!(z.rpc_zmq_host, "node7");
        assert!(z.use_pub_sub);
        assert!(z.subscribe_on.is_empty());
        assert_eq!(z.rpc_zmq_topic_backlog, Some(7));
        // The [oslo_messaging_zmq] one wins whatever the order.
        for text in [
            "[oslo_messaging_zmq]\nrpc_zmq_host = z\n[DEFAULT]\nrpc_zmq_host = d\n",
            "[DEFAULT]\nrpc_zmq_host = d\n[oslo_messaging_zmq]\nrpc_zmq_host = z\n",
        ] {
            assert_eq!(section(text).unwrap().rpc_zmq_host, "z");
        }
        // Removed options are ignored.
        assert_eq!(
            section("[oslo_messaging_zmq]\nrpc_zmq_port = 1\nzmq_use_broker = true\n").unwrap(),
            ZmqSection::default()
        );
    }

    #[test]
    fn choices_limits_and_ignored_options() {
        for (text, want) in [
            ("rpc_zmq_matchmaker = etcd", "rpc_zmq_matchmaker"),
            ("rpc_zmq_serialization = xml", "rpc_zmq_serialization"),
            ("rpc_zmq_max_port = 65537", "rpc_zmq_max_port"),
            ("rpc_zmq_min_port = 65536", "rpc_zmq_min_port"),
            ("zmq_send_queue = 0", "zmq_send_queue must be at least 1"),
        ] {
            let e = section(&format!("[oslo_messaging_zmq]\n{text}\n")).unwrap_err();
            assert!(e.to_string().contains(want), "{text:?}: {e}");
        }
        // Ignored options are fields, typed like the others.
        let z = section("[oslo_messaging_zmq]\nrpc_zmq_contexts = 4\n").unwrap();
        assert_eq!(z.rpc_zmq_contexts, 4);
        let e = section("[oslo_messaging_zmq]\nrpc_use_acks = sometimes\n").unwrap_err();
        assert!(e.to_string().contains("rpc_use_acks (line 2)"), "{e}");
        let defaults = serde_json::to_value(ZmqSection::default()).unwrap();
        for ignored in ZmqSection::IGNORED {
            assert!(
                ignored.name == "rpc_zmq_topic_backlog" || defaults.get(ignored.name).is_some(),
                "{} is not an option",
                ignored.name
            );
        }
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
