//! The driver's settings: its section, `[oslo_messaging_zaqar]` ([`ZaqarSection`],
//! registered with the core's registry by [`register`](crate::register)), with the
//! transport URL's query parameters laid over it, and what the URL itself says.
//!
//! ```ini
//! [oslo_messaging_notifications]
//! driver = messagingv2
//! transport_url = zaqar+https://zaqar.example.org:8888/
//!
//! [oslo_messaging_zaqar]
//! auth_url = https://keystone.example.org:5000/v3
//! username = ceilometer
//! password = secret
//! project_name = service
//! ssl_ca_file = /etc/ssl/certs/openstack-ca.pem
//! claim_limit = 20
//! ```
//!
//! The URL: `zaqar://host:port/[project-id][?option=value…]`, `zaqar+https://` for TLS.
//! The path, when given, is the project id (`X-Project-ID`); the user and password of
//! the URL, when given, are Keystone's `username` and `password`. A query parameter
//! overrides the option of its name for one transport.

use std::fmt;
use std::time::Duration;

use messaging_core::config::{DriverSection, check_range};
use messaging_core::{Config, Error, Result, TransportUrl};
use serde::{Deserialize, Serialize};

use crate::keystone::PasswordAuth;

/// The section's name.
const SECTION: &str = "oslo_messaging_zaqar";

/// Zaqar's default port.
const DEFAULT_PORT: u16 = 8888;

/// `[oslo_messaging_zaqar]` options, with their defaults. oslo.messaging has no Zaqar
/// driver: every option is this project's.
///
/// ```
/// use driver_zaqar::ZaqarSection;
/// use messaging_core::Config;
///
/// let conf = Config::from_ini_str(
///     "[oslo_messaging_zaqar]\nclaim_limit = 5\npassword = hunter2\n",
/// )?;
/// let zaqar: ZaqarSection = conf.section()?;
/// assert_eq!(zaqar.claim_limit, 5);
/// assert!(!format!("{zaqar:?}").contains("hunter2"));
/// # Ok::<(), messaging_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ZaqarSection {
    /// `X-Project-ID` of every request when the URL has no path; empty takes the
    /// Keystone token's project. Default empty.
    pub project_id: String,
    /// A Keystone token sent as it is (`X-Auth-Token`), for deployments that hand
    /// the service one; not renewed. Secret. Default empty.
    pub auth_token: String,
    /// Keystone's URL for password authentication (v3); empty for none. Default empty.
    pub auth_url: String,
    /// Keystone user (the URL's user overrides it). Default empty.
    pub username: String,
    /// Keystone password (the URL's password overrides it). Secret. Default empty.
    pub password: String,
    /// The user's Keystone domain. Default `Default`.
    pub user_domain_name: String,
    /// The project the token is scoped to. Default empty.
    pub project_name: String,
    /// The project's Keystone domain. Default `Default`.
    pub project_domain_name: String,
    /// Messages a listener or server takes from a queue in one request (1 to 20).
    /// Default 20.
    pub claim_limit: usize,
    /// Notifications a listener holds unsettled at most (1 or more): it claims no
    /// more than it has room for, so listeners of one queue share its messages, and a
    /// batch listener's batches are no larger. Default 200.
    pub prefetch_count: usize,
    /// Seconds a claim holds its messages before Zaqar frees them for another
    /// listener (60 to 43200): a handler taking longer sees its notification
    /// delivered again. Default 300.
    pub claim_ttl: u32,
    /// Seconds Zaqar extends a claimed message's life by when it would expire while
    /// claimed (60 to 43200). Default 60.
    pub claim_grace: u32,
    /// Seconds a notification or request lives in its queue (60 to 1209600).
    /// Default 3600.
    pub message_ttl: u32,
    /// Seconds a reply lives in its queue (60 to 1209600). Default 300.
    pub reply_ttl: u32,
    /// Seconds between polls of a queue that had messages at the last poll (Zaqar has
    /// no long polling). Default 0.01: the benchmark's calls took 14 ms (median) at
    /// 0.01, 24 ms at 0.02 and 54 ms at 0.05.
    pub poll_interval: f64,
    /// Longest seconds between polls of an idle queue: the wait doubles from
    /// `poll_interval` up to it while a queue stays empty. Default 0.25.
    pub idle_poll_interval: f64,
    /// Seconds a notifier trusts its list of the pools listening to a topic before
    /// reading it again. Default 1.0.
    pub pool_refresh_interval: f64,
    /// Seconds a server's or pool's registration lives unless renewed (60 or more);
    /// it is renewed every third of it. Default 60.
    pub registration_ttl: u32,
    /// Seconds one HTTP request may take. Default 30.
    pub request_timeout: f64,
    /// First wait, in seconds, before a failed request is tried again; it doubles up
    /// to `retry_interval_max`. Default 0.1.
    pub retry_interval: f64,
    /// Longest wait between attempts, in seconds. Default 5.0.
    pub retry_interval_max: f64,
    /// A CA certificate file (PEM) trusted for `zaqar+https` besides the system's.
    /// Default empty.
    pub ssl_ca_file: String,
    /// Accept any server certificate (never in production). Default false.
    pub insecure: bool,
}

impl Default for ZaqarSection {
    fn default() -> Self {
        ZaqarSection {
            project_id: String::new(),
            auth_token: String::new(),
            auth_url: String::new(),
            username: String::new(),
            password: String::new(),
            user_domain_name: "Default".into(),
            project_name: String::new(),
            project_domain_name: "Default".into(),
            claim_limit: 20,
            prefetch_count: 200,
            claim_ttl: 300,
            claim_grace: 60,
            message_ttl: 3600,
            reply_ttl: 300,
            poll_interval: 0.01,
            idle_poll_interval: 0.25,
            pool_refresh_interval: 1.0,
            registration_ttl: 60,
            request_timeout: 30.0,
            retry_interval: 0.1,
            retry_interval_max: 5.0,
            ssl_ca_file: String::new(),
            insecure: false,
        }
    }
}

impl fmt::Debug for ZaqarSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mask = |s: &str| if s.is_empty() { "" } else { "****" };
        f.debug_struct("ZaqarSection")
            .field("project_id", &self.project_id)
            .field("auth_token", &mask(&self.auth_token))
            .field("auth_url", &self.auth_url)
            .field("username", &self.username)
            .field("password", &mask(&self.password))
            .field("user_domain_name", &self.user_domain_name)
            .field("project_name", &self.project_name)
            .field("project_domain_name", &self.project_domain_name)
            .field("claim_limit", &self.claim_limit)
            .field("prefetch_count", &self.prefetch_count)
            .field("claim_ttl", &self.claim_ttl)
            .field("claim_grace", &self.claim_grace)
            .field("message_ttl", &self.message_ttl)
            .field("reply_ttl", &self.reply_ttl)
            .field("poll_interval", &self.poll_interval)
            .field("idle_poll_interval", &self.idle_poll_interval)
            .field("pool_refresh_interval", &self.pool_refresh_interval)
            .field("registration_ttl", &self.registration_ttl)
            .field("request_timeout", &self.request_timeout)
            .field("retry_interval", &self.retry_interval)
            .field("retry_interval_max", &self.retry_interval_max)
            .field("ssl_ca_file", &self.ssl_ca_file)
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl DriverSection for ZaqarSection {
    const SECTION: &'static str = SECTION;
    const SECRETS: &'static [&'static str] = &["auth_token", "password"];

    fn validate(&self) -> Result<()> {
        let range = |option: &str, value: f64, min: f64, max: f64| {
            check_range(SECTION, option, value, min, max)
        };
        range("claim_limit", self.claim_limit as f64, 1.0, 20.0)?;
        range(
            "prefetch_count",
            self.prefetch_count as f64,
            1.0,
            1_000_000.0,
        )?;
        range("claim_ttl", self.claim_ttl.into(), 60.0, 43200.0)?;
        range("claim_grace", self.claim_grace.into(), 60.0, 43200.0)?;
        range("message_ttl", self.message_ttl.into(), 60.0, 1_209_600.0)?;
        range("reply_ttl", self.reply_ttl.into(), 60.0, 1_209_600.0)?;
        range(
            "registration_ttl",
            self.registration_ttl.into(),
            60.0,
            86400.0,
        )?;
        range("poll_interval", self.poll_interval, 0.001, 60.0)?;
        range("idle_poll_interval", self.idle_poll_interval, 0.001, 60.0)?;
        range(
            "pool_refresh_interval",
            self.pool_refresh_interval,
            0.0,
            3600.0,
        )?;
        range("request_timeout", self.request_timeout, 0.1, 3600.0)?;
        range("retry_interval", self.retry_interval, 0.001, 60.0)?;
        range("retry_interval_max", self.retry_interval_max, 0.001, 3600.0)
    }
}

/// How requests are authenticated. `Debug` hides the token and the password.
#[derive(Clone, PartialEq)]
pub enum Auth {
    /// No token (Zaqar without Keystone); the project id is given.
    None,
    /// A fixed token.
    Token(String),
    /// Keystone v3 password authentication.
    Password(PasswordAuth),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Token(_) => f.write_str("Token(****)"),
            Auth::Password(auth) => f.debug_tuple("Password").field(auth).finish(),
        }
    }
}

/// The resolved options of one transport.
#[derive(Clone)]
pub struct ZaqarOptions {
    /// `[oslo_messaging_zaqar]` after URL overrides.
    pub zaqar: ZaqarSection,
    /// `[DEFAULT] control_exchange`: the exchange of RPC targets that name none.
    pub control_exchange: String,
    /// `http(s)://host:port`.
    pub endpoint: String,
    /// `X-Project-ID`; `None` takes the token's project.
    pub project: Option<String>,
    /// How requests are authenticated.
    pub auth: Auth,
}

impl fmt::Debug for ZaqarOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZaqarOptions")
            .field("endpoint", &self.endpoint)
            .field("project", &self.project)
            .field("auth", &self.auth)
            .field("zaqar", &self.zaqar)
            .finish()
    }
}

impl ZaqarOptions {
    /// Resolves the options for `url` from `config`; a query parameter named like an
    /// `[oslo_messaging_zaqar]` option overrides it, any other is an error naming it.
    ///
    /// ```
    /// use driver_zaqar::ZaqarOptions;
    /// use messaging_core::{Config, TransportUrl};
    ///
    /// let url: TransportUrl = "zaqar+https://zq.example.org/demo?claim_limit=3".parse()?;
    /// let options = ZaqarOptions::resolve(&url, &Config::default())?;
    /// assert_eq!(options.endpoint, "https://zq.example.org:8888");
    /// assert_eq!(options.project.as_deref(), Some("demo"));
    /// assert_eq!(options.zaqar.claim_limit, 3);
    /// # Ok::<(), messaging_core::Error>(())
    /// ```
    pub fn resolve(url: &TransportUrl, config: &Config) -> Result<ZaqarOptions> {
        let mut zaqar: ZaqarSection = config.section_with_url(url)?;
        let invalid = |reason: String| Error::InvalidUrl {
            url: url.masked(),
            reason,
        };
        let scheme = match url.transport.as_str() {
            "zaqar" | "zaqar+http" => "http",
            "zaqar+https" => "https",
            other => {
                return Err(invalid(format!(
                    "the Zaqar driver takes zaqar:// or zaqar+https://, not {other}://"
                )));
            }
        };
        let [host] = url.hosts.as_slice() else {
            return Err(invalid(format!(
                "a Zaqar URL names one host, this one {}",
                url.hosts.len()
            )));
        };
        let name = host.hostname.as_deref().unwrap_or("");
        if name.is_empty() {
            return Err(invalid("a Zaqar URL needs a host name".into()));
        }
        let port = host.port.unwrap_or(DEFAULT_PORT);
        let endpoint = if name.contains(':') {
            format!("{scheme}://[{name}]:{port}")
        } else {
            format!("{scheme}://{name}:{port}")
        };
        if let Some(user) = host.username.as_deref().filter(|u| !u.is_empty()) {
            zaqar.username = user.to_string();
        }
        if let Some(password) = &host.password {
            zaqar.password = password.clone();
        }
        let project = url
            .virtual_host
            .clone()
            .filter(|v| !v.is_empty())
            .or_else(|| Some(zaqar.project_id.clone()).filter(|p| !p.is_empty()));
        let auth = if !zaqar.auth_token.is_empty() {
            Auth::Token(zaqar.auth_token.clone())
        } else if !zaqar.auth_url.is_empty() {
            if zaqar.username.is_empty() || zaqar.project_name.is_empty() {
                return Err(messaging_core::config::error(format!(
                    "[{SECTION}] auth_url is set: username and project_name are needed too"
                )));
            }
            Auth::Password(PasswordAuth {
                auth_url: zaqar.auth_url.clone(),
                username: zaqar.username.clone(),
                password: zaqar.password.clone(),
                user_domain_name: zaqar.user_domain_name.clone(),
                project_name: zaqar.project_name.clone(),
                project_domain_name: zaqar.project_domain_name.clone(),
            })
        } else if !zaqar.username.is_empty() || !zaqar.password.is_empty() {
            return Err(messaging_core::config::error(format!(
                "a Zaqar user and password (in the URL or [{SECTION}]) need Keystone: set \
                 [{SECTION}] auth_url and project_name"
            )));
        } else {
            Auth::None
        };
        if project.is_none() && !matches!(auth, Auth::Password(_)) {
            return Err(messaging_core::config::error(format!(
                "Zaqar needs a project id: give it as the URL's path (zaqar://host:port/PROJECT), \
                 as [{SECTION}] project_id, or let Keystone scope a token ([{SECTION}] auth_url)"
            )));
        }
        if zaqar.idle_poll_interval < zaqar.poll_interval {
            zaqar.idle_poll_interval = zaqar.poll_interval;
        }
        Ok(ZaqarOptions {
            zaqar,
            control_exchange: config.default.control_exchange.clone(),
            endpoint,
            project,
            auth,
        })
    }

    /// Seconds as a duration.
    pub fn seconds(value: f64) -> Duration {
        Duration::from_secs_f64(value.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(url: &str, ini: &str) -> Result<ZaqarOptions> {
        ZaqarOptions::resolve(&url.parse()?, &Config::from_ini_str(ini)?)
    }

    #[test]
    fn url_and_section() {
        let o = resolve(
            "zaqar://u:p%40ss@[::1]/proj",
            "[oslo_messaging_zaqar]\nauth_url = http://ks:5000\nproject_name = svc\n",
        )
        .unwrap();
        assert_eq!(o.endpoint, "http://[::1]:8888");
        assert_eq!(o.project.as_deref(), Some("proj"));
        let Auth::Password(p) = &o.auth else {
            panic!("{:?}", o.auth)
        };
        assert_eq!((p.username.as_str(), p.password.as_str()), ("u", "p@ss"));
        assert!(!format!("{o:?}").contains("p@ss"));

        let o = resolve(
            "zaqar://h:1/",
            "[oslo_messaging_zaqar]\nproject_id = x\nauth_token = s3cr3t-t0ken\n",
        )
        .unwrap();
        assert_eq!(o.project.as_deref(), Some("x"));
        assert_eq!(o.auth, Auth::Token("s3cr3t-t0ken".into()));
        assert!(!format!("{o:?}").contains("s3cr3t-t0ken"), "{o:?}");
        assert!(!format!("{:?}", o.auth).contains("s3cr3t-t0ken"));
    }

    #[test]
    fn bad_parts_are_named() {
        let e = resolve("zaqar://h/", "").unwrap_err().to_string();
        assert!(e.contains("project id"), "{e}");
        let e = resolve("zaqar://h/p?claim_limit=50", "")
            .unwrap_err()
            .to_string();
        assert!(e.contains("claim_limit"), "{e}");
        let e = resolve("zaqar://h/p?nonsense=1", "")
            .unwrap_err()
            .to_string();
        assert!(e.contains("nonsense"), "{e}");
        let e = resolve("zaqar://h1,h2/p", "").unwrap_err().to_string();
        assert!(e.contains("one host"), "{e}");
        let e = resolve(
            "zaqar://h/p",
            "[oslo_messaging_zaqar]\nauth_url = http://ks\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("username"), "{e}");
        let e = resolve("zaqar://u:secret@h/p", "").unwrap_err().to_string();
        assert!(e.contains("auth_url") && !e.contains("secret"), "{e}");
    }
}
