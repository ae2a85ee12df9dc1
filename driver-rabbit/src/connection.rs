//! Opening AMQP connections: the URL's hosts with oslo's defaults, TLS, the login
//! method, the negotiated heartbeat, failover across hosts and the reconnect backoff.
//!
//! lapin drives the AMQP heartbeat from its own I/O thread, so heartbeats keep flowing
//! however busy the application's tasks are.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::uri::{
    AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo, SASLMechanism,
};
use lapin::{Connection, ConnectionProperties};
use messaging_core::{Detail, Error, ErrorKind, Result, Retry, TransportUrl};

use rand::seq::SliceRandom;

use crate::kinds;
use crate::options::RabbitOptions;

/// How long one TCP + AMQP handshake may take before the next host is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The SASL mechanism for `rabbit_login_method`.
fn login_mechanism(name: &str) -> Result<SASLMechanism> {
    match name.to_ascii_uppercase().as_str() {
        "AMQPLAIN" => Ok(SASLMechanism::AMQPlain),
        "PLAIN" => Ok(SASLMechanism::Plain),
        "EXTERNAL" => Ok(SASLMechanism::External),
        "RABBIT-CR-DEMO" => Ok(SASLMechanism::RabbitCrDemo),
        _ => Err(Error::Config(format!(
            "[oslo_messaging_rabbit] rabbit_login_method must be PLAIN, AMQPLAIN, EXTERNAL or RABBIT-CR-DEMO, not {name:?}"
        ).into())),
    }
}

/// One broker node to try.
#[derive(Clone)]
struct Node {
    host: String,
    port: u16,
    username: String,
    password: String,
}

impl Node {
    /// `host:port`, the way logs and errors name a node (never with credentials).
    fn label(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"****")
            .finish()
    }
}

/// Opens connections to the nodes of one transport URL.
pub(crate) struct Connector {
    nodes: Vec<Node>,
    vhost: String,
    options: Arc<RabbitOptions>,
    tls: Option<OwnedTLSConfig>,
    mechanism: SASLMechanism,
    next: AtomicUsize,
    name_prefix: String,
    /// The broker refused a transient non-exclusive queue: private queues are declared
    /// exclusive, shared ones durable, from then on.
    transient_refused: AtomicBool,
    /// Exchanges and queues joined as they exist, warned about once each.
    joined: Mutex<HashSet<String>>,
    /// Whether the broker's version was looked at (for `rabbit_ha_queues`).
    version_checked: AtomicBool,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("nodes", &self.nodes)
            .field("vhost", &self.vhost)
            .field("tls", &self.tls.is_some())
            .field("mechanism", &self.mechanism)
            .finish()
    }
}

impl Connector {
    /// Prepares connections for `url`: oslo's defaults (`guest`/`guest` at
    /// `localhost:5672`, vhost `/`), hosts shuffled once when there are several.
    pub(crate) fn new(url: &TransportUrl, options: Arc<RabbitOptions>) -> Result<Connector> {
        let default_port = if options.rabbit.ssl { 5671 } else { 5672 };
        let mut nodes: Vec<Node> = url
            .hosts
            .iter()
            .map(|h| Node {
                host: h
                    .hostname
                    .clone()
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| "localhost".into()),
                port: h.port.unwrap_or(default_port),
                username: h
                    .username
                    .clone()
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| "guest".into()),
                password: h
                    .password
                    .clone()
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "guest".into()),
            })
            .collect();
        if nodes.is_empty() {
            nodes.push(Node {
                host: "localhost".into(),
                port: default_port,
                username: "guest".into(),
                password: "guest".into(),
            });
        }
        nodes.shuffle(&mut rand::rng());
        // kombu turns an empty path into the default virtual host.
        let vhost = url
            .virtual_host
            .clone()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "/".into());
        let tls = if options.rabbit.ssl {
            Some(tls_config(&options)?)
        } else {
            None
        };
        let mechanism = login_mechanism(&options.rabbit.rabbit_login_method)?;
        let program = std::env::args()
            .next()
            .as_deref()
            .map(std::path::Path::new)
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "rust".into());
        Ok(Connector {
            nodes,
            vhost,
            options,
            tls,
            mechanism,
            next: AtomicUsize::new(0),
            name_prefix: format!("{program}:{}", std::process::id()),
            transient_refused: AtomicBool::new(false),
            joined: Mutex::default(),
            version_checked: AtomicBool::new(false),
        })
    }

    /// Whether the broker refuses transient non-exclusive queues (RabbitMQ 4.3's
    /// default), as learnt from a refusal.
    pub(crate) fn transient_refused(&self) -> bool {
        self.transient_refused.load(Ordering::Relaxed)
    }

    /// Notes that the broker refuses transient non-exclusive queues: from now on,
    /// private (reply and fanout) queues are declared exclusive and shared (topic,
    /// server, notification) queues durable. Warns the first time.
    pub(crate) fn note_transient_refusal(&self) {
        if !self.transient_refused.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                nodes = %self.node_labels(),
                "RabbitMQ refuses transient queues that are not exclusive (RabbitMQ 4.3, or \
                 deprecated_features.permit.transient_nonexcl_queues = false): reply and fanout \
                 queues are declared exclusive to their connection, and topic and notification \
                 queues durable, from now on. Set [oslo_messaging_rabbit] rabbit_quorum_queue \
                 (with rabbit_transient_quorum_queue) or amqp_durable_queues alike on every \
                 service, Python ones included, so that all declare the shared queues the same way"
            );
        }
    }

    /// Warns, once per name, that an exchange or queue declared otherwise by a peer is
    /// used as it exists.
    pub(crate) fn joined(&self, what: &str, name: &str, refusal: &lapin::Error) {
        let news = self
            .joined
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(format!("{what} {name}"));
        if news {
            tracing::warn!(
                nodes = %self.node_labels(),
                "{what} {name:?} exists with other flags or arguments than this service declares \
                 ({}); using it as it is. Set [oslo_messaging_rabbit] rabbit_quorum_queue, \
                 amqp_durable_queues and rabbit_transient_quorum_queue alike on every service",
                crate::kinds::protocol_error(refusal).map_or_else(|| refusal.to_string(), |(_, t)| t)
            );
        }
    }

    /// With `rabbit_ha_queues`, once: warns where the broker is RabbitMQ 4 or later, which
    /// has no classic queue mirroring, so that `x-ha-policy` does nothing. (Over TLS the
    /// version is not read.)
    fn check_version(&self, node: &Node) {
        if !self.options.rabbit.rabbit_ha_queues
            || self.tls.is_some()
            || self.version_checked.swap(true, Ordering::Relaxed)
        {
            return;
        }
        let (host, port, label) = (node.host.clone(), node.port, node.label());
        tokio::spawn(async move {
            let Some(version) = crate::broker_version::announced(&host, port).await else {
                return;
            };
            if crate::broker_version::major(&version).is_some_and(|m| m >= 4) {
                tracing::warn!(
                    node = %label,
                    "rabbit_ha_queues has no effect on RabbitMQ {version}: classic queue mirroring \
                     was removed in RabbitMQ 4.0 (x-ha-policy is ignored); set rabbit_quorum_queue \
                     for replicated queues"
                );
            }
        });
    }

    /// The options this connector was made with.
    pub(crate) fn options(&self) -> &Arc<RabbitOptions> {
        &self.options
    }

    /// `host:port` of every node, for messages.
    pub(crate) fn node_labels(&self) -> String {
        self.nodes
            .iter()
            .map(Node::label)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn pick(&self) -> &Node {
        let i = match self.options.rabbit.kombu_failover_strategy.as_str() {
            "shuffle" => rand::random_range(0..self.nodes.len()),
            _ => self.next.fetch_add(1, Ordering::Relaxed) % self.nodes.len(),
        };
        &self.nodes[i]
    }

    /// Connects to one node after another, waiting the configured backoff between
    /// attempts, until one answers or `retry` is spent; then fails with
    /// [`Error::DeliveryFailure`] naming the nodes tried. `purpose` names the
    /// connection in logs.
    pub(crate) async fn connect(
        &self,
        retry: Retry,
        purpose: &str,
    ) -> Result<(Connection, String)> {
        let mut waits = self.options.retry_intervals();
        let mut attempt: u32 = 0;
        loop {
            let node = self.pick().clone();
            let label = node.label();
            let (error, cause) =
                match tokio::time::timeout(CONNECT_TIMEOUT, self.connect_to(&node)).await {
                    Ok(Ok(connection)) => {
                        tracing::info!(node = %label, purpose, "connected to RabbitMQ");
                        watch_events(&connection, label.clone(), purpose.to_string());
                        self.check_version(&node);
                        return Ok((connection, label));
                    }
                    Ok(Err(e)) if kinds::of_connect(&e) == ErrorKind::RefusedCredentials => {
                        // Wrong credentials do not get better by retrying.
                        let message = format!(
                            "RabbitMQ at {label} refused the login of user {:?} with {}: {}",
                            node.username,
                            self.mechanism,
                            scrub(&e.to_string(), &node.password)
                        );
                        return Err(Error::Transport(
                            Detail::new(ErrorKind::RefusedCredentials, message)
                                .with_source_hiding(e, &node.password),
                        ));
                    }
                    Ok(Err(e)) => (scrub(&describe(&e, &self.options), &node.password), Some(e)),
                    Err(_) => (format!("no answer within {CONNECT_TIMEOUT:?}"), None),
                };
            if !retry.allows_another(attempt + 1) {
                let message = format!(
                    "cannot connect to RabbitMQ after {} attempt(s) (nodes {}): {error}",
                    attempt + 1,
                    self.node_labels()
                );
                // The kind and source of the last attempt's failure; one that got no
                // answer at all found nothing listening.
                let detail = match cause {
                    Some(e) => Detail::new(kinds::of_connect(&e), message)
                        .with_source_hiding(e, &node.password),
                    None => Detail::new(ErrorKind::Unreachable, message),
                };
                return Err(Error::DeliveryFailure(detail));
            }
            let wait = waits.next().unwrap_or(Duration::from_secs(1));
            tracing::warn!(node = %label, purpose, %error, retry_in = ?wait, "cannot connect to RabbitMQ");
            tokio::time::sleep(wait).await;
            attempt = attempt.saturating_add(1);
        }
    }

    async fn connect_to(&self, node: &Node) -> lapin::Result<Connection> {
        let uri = AMQPUri {
            scheme: if self.tls.is_some() {
                AMQPScheme::AMQPS
            } else {
                AMQPScheme::AMQP
            },
            authority: AMQPAuthority {
                userinfo: AMQPUserInfo {
                    username: node.username.clone(),
                    password: node.password.clone(),
                },
                host: node.host.clone(),
                port: node.port,
            },
            vhost: self.vhost.clone(),
            query: AMQPQueryString {
                heartbeat: Some(self.options.heartbeat()),
                auth_mechanism: Some(self.mechanism),
                connection_timeout: Some(CONNECT_TIMEOUT.as_millis() as u64),
                ..Default::default()
            },
        };
        let name = format!("{}:{}", self.name_prefix, uuid::Uuid::new_v4());
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        let runtime = lapin::runtime::default_runtime()?;
        Connection::connect_uri_with_config(
            uri,
            properties,
            self.tls.clone().unwrap_or_default(),
            runtime,
        )
        .await
    }
}

/// Logs what the broker says about a connection: blocked and unblocked (a resource
/// alarm holds publishers), and errors.
fn watch_events(connection: &Connection, node: String, purpose: String) {
    use futures::StreamExt;
    let mut events = connection.events_listener();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            match event {
                lapin::Event::ConnectionBlocked(reason) => {
                    tracing::error!(%node, %purpose, %reason, "the broker has blocked the connection");
                }
                lapin::Event::ConnectionUnblocked => {
                    tracing::info!(%node, %purpose, "the broker has unblocked the connection");
                }
                lapin::Event::Error(error) => {
                    tracing::warn!(%node, %purpose, %error, "connection error");
                }
                _ => {}
            }
        }
    });
}

/// The TLS settings of `[oslo_messaging_rabbit]`: a CA file replaces the system roots;
/// a client certificate and key (PEM) authenticate us. The broker's certificate and
/// host name are always verified: rustls offers no way to skip either, which is
/// stricter than `ssl_enforce_hostname_verification = false`.
fn tls_config(options: &RabbitOptions) -> Result<OwnedTLSConfig> {
    let r = &options.rabbit;
    let read = |option: &str, path: &str| {
        std::fs::read(path).map_err(|e| {
            let message = format!("[oslo_messaging_rabbit] {option} = {path}: cannot read: {e}");
            Error::Config(Detail::new(ErrorKind::Config, message).with_source(e))
        })
    };
    let cert_chain = if r.ssl_ca_file.is_empty() {
        None
    } else {
        let pem = read("ssl_ca_file", &r.ssl_ca_file)?;
        Some(String::from_utf8(pem).map_err(|_| {
            Error::Config(
                format!(
                    "[oslo_messaging_rabbit] ssl_ca_file = {}: not a PEM file",
                    r.ssl_ca_file
                )
                .into(),
            )
        })?)
    };
    let identity = match (r.ssl_cert_file.is_empty(), r.ssl_key_file.is_empty()) {
        (true, true) => None,
        (false, false) => Some(OwnedIdentity::PKCS8 {
            pem: read("ssl_cert_file", &r.ssl_cert_file)?,
            key: read("ssl_key_file", &r.ssl_key_file)?,
        }),
        _ => {
            return Err(Error::Config(
                "[oslo_messaging_rabbit] ssl_cert_file and ssl_key_file must be set together"
                    .into(),
            ));
        }
    };
    if !r.ssl_enforce_hostname_verification {
        tracing::warn!(
            "ssl_enforce_hostname_verification = false is ignored: the broker host name is always verified"
        );
    }
    Ok(OwnedTLSConfig {
        identity,
        cert_chain,
    })
}

/// lapin's text for a failed connection, saying what a TLS failure means: rustls only
/// says "invalid peer certificate: UnknownIssuer" when the broker's certificate does not
/// verify, and "received fatal alert: UnknownCA" when the broker rejects ours. In TLS
/// 1.3 the broker judges our certificate after our side has finished the handshake, so
/// its alert may be lost to a reset of the connection.
fn describe(e: &lapin::Error, options: &RabbitOptions) -> String {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, UnexpectedEof};
    let text = e.to_string();
    let (lapin::ErrorKind::IOError(io_error), true) = (e.kind(), options.rabbit.ssl) else {
        return text;
    };
    let r = &options.rabbit;
    let io = io_error.to_string();
    if io.starts_with("invalid peer certificate") {
        let trusted = if r.ssl_ca_file.is_empty() {
            "the system's root certificates".to_string()
        } else {
            format!("ssl_ca_file = {}", r.ssl_ca_file)
        };
        format!("TLS: the server certificate could not be verified (trusting {trusted}): {text}")
    } else if io.starts_with("received fatal alert")
        && (io.contains("Certificate") || io.contains("UnknownCA"))
    {
        if r.ssl_cert_file.is_empty() {
            format!(
                "TLS: the broker wants a client certificate (ssl_cert_file, ssl_key_file): {text}"
            )
        } else {
            format!(
                "TLS: the broker refused our client certificate (ssl_cert_file = {}): {text}",
                r.ssl_cert_file
            )
        }
    } else if !r.ssl_cert_file.is_empty()
        && matches!(
            io_error.kind(),
            ConnectionReset | ConnectionAborted | UnexpectedEof
        )
    {
        format!(
            "TLS: the broker closed the connection; it may have refused our client certificate (ssl_cert_file = {}): {text}",
            r.ssl_cert_file
        )
    } else {
        text
    }
}

/// Removes a password from a text that may quote it (an error from the network stack).
pub(crate) fn scrub(text: &str, password: &str) -> String {
    if password.len() < 3 {
        return text.to_string();
    }
    text.replace(password, "****")
}

#[cfg(test)]
mod tests {
    use super::*;
    use messaging_core::Config;

    fn connector(url: &str, ini: &str) -> Result<Connector> {
        let url: TransportUrl = url.parse().unwrap();
        let options = RabbitOptions::resolve(&url, &Config::from_ini_str(ini).unwrap())?;
        Connector::new(&url, Arc::new(options))
    }

    #[test]
    fn oslo_defaults_for_missing_parts() {
        let c = connector("rabbit://", "").unwrap();
        assert_eq!(c.node_labels(), "localhost:5672");
        assert_eq!(c.vhost, "/");
        assert_eq!(c.nodes[0].username, "guest");
        let c = connector("rabbit://u:p@[::1]:5673/vh", "").unwrap();
        assert_eq!(c.node_labels(), "[::1]:5673");
        assert_eq!(c.vhost, "vh");
        let c = connector("rabbit://h/?ssl=true", "").unwrap();
        assert_eq!(c.node_labels(), "h:5671");
    }

    #[test]
    fn round_robin_visits_every_node() {
        let c = connector("rabbit://a:1,b:2,c:3/", "").unwrap();
        let mut seen: Vec<String> = (0..3).map(|_| c.pick().label()).collect();
        seen.sort();
        assert_eq!(seen, ["a:1", "b:2", "c:3"]);
    }

    #[test]
    fn debug_hides_the_password() {
        let c = connector("rabbit://user:hunter22@h/", "").unwrap();
        let text = format!("{c:?}");
        assert!(!text.contains("hunter22"), "{text}");
        assert!(text.contains("user"), "{text}");
    }

    #[test]
    fn tls_files_are_checked() {
        let e = connector(
            "rabbit://h/",
            "[oslo_messaging_rabbit]\nssl = true\nssl_ca_file = /nonexistent/ca.pem\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("ssl_ca_file"), "{e}");
        let e = connector(
            "rabbit://h/",
            "[oslo_messaging_rabbit]\nssl = true\nssl_cert_file = /x.pem\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("together"), "{e}");
    }

    #[test]
    fn tls_failures_are_explained() {
        let options = |ini: &str| {
            let url: TransportUrl = "rabbit://h/".parse().unwrap();
            RabbitOptions::resolve(&url, &Config::from_ini_str(ini).unwrap()).unwrap()
        };
        let io = |text: &str| lapin::Error::from(std::io::Error::other(text.to_string()));
        let tls = options("[oslo_messaging_rabbit]\nssl = true\nssl_ca_file = /ca.pem\n");
        let text = describe(&io("invalid peer certificate: UnknownIssuer"), &tls);
        assert!(
            text.contains("server certificate could not be verified"),
            "{text}"
        );
        assert!(
            text.contains("/ca.pem") && text.contains("UnknownIssuer"),
            "{text}"
        );
        let text = describe(&io("received fatal alert: UnknownCA"), &tls);
        assert!(text.contains("wants a client certificate"), "{text}");
        let client = options(
            "[oslo_messaging_rabbit]\nssl = true\nssl_cert_file = /c.pem\nssl_key_file = /c.key\n",
        );
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let text = describe(&lapin::Error::from(reset), &client);
        assert!(
            text.contains("may have refused our client certificate"),
            "{text}"
        );
        assert!(text.contains("/c.pem"), "{text}");
        let plain = describe(&io("invalid peer certificate: x"), &options(""));
        assert_eq!(plain, "IO error: invalid peer certificate: x");
    }

    #[tokio::test]
    async fn an_unreachable_node_fails_after_the_retries_naming_it() {
        let c = connector(
            "rabbit://guest:sekrit99@127.0.0.1:1/",
            "[oslo_messaging_rabbit]\nrabbit_retry_interval = 1\n",
        )
        .unwrap();
        let started = std::time::Instant::now();
        let e = c.connect(Retry::Times(1), "test").await.unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::DeliveryFailure(_)), "{e:?}");
        assert!(text.contains("127.0.0.1:1"), "{text}");
        assert!(text.contains("2 attempt"), "{text}");
        assert!(!text.contains("sekrit99"), "{text}");
        assert!(started.elapsed() >= Duration::from_secs(1));
    }
}
