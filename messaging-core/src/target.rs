//! Where a message goes, or what a server listens to.

use std::fmt;

use crate::Version;

/// oslo's `Target`: exchange, topic, namespace, version, server, fanout.
///
/// ```
/// use messaging_core::Target;
/// let t = Target::topic("compute").server("host1").version("1.3");
/// assert_eq!(t.server.as_deref(), Some("host1"));
/// ```
///
/// The fields are public to read and to change, but a target is built with
/// [`Target::topic`], [`Target::namespace_only`] or [`Target::default`] and the setters
/// below: the struct is `#[non_exhaustive]`, so that a field oslo adds is not a
/// breaking change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Target {
    /// Topic scope; `None` means the transport's `control_exchange`.
    pub exchange: Option<String>,
    /// The set of interfaces; required to send, listen or notify.
    pub topic: Option<String>,
    /// RPC interface namespace; `None` is the null namespace.
    pub namespace: Option<String>,
    /// On a client, the version the message needs; on an endpoint, the version it
    /// implements (1.0 when unset). Kept as text so any string round-trips; it is
    /// validated where it is used.
    pub version: Option<String>,
    /// One server of the topic.
    pub server: Option<String>,
    /// Cast to every server of the topic.
    pub fanout: bool,
    /// Extra namespaces an endpoint accepts (for namespace renames).
    pub legacy_namespaces: Vec<String>,
}

impl Target {
    /// A target with only a topic.
    pub fn topic(topic: impl Into<String>) -> Self {
        Target {
            topic: Some(topic.into()),
            ..Default::default()
        }
    }

    /// An endpoint target with a namespace (no topic), as used by `Endpoint`.
    pub fn namespace_only(namespace: impl Into<String>) -> Self {
        Target {
            namespace: Some(namespace.into()),
            ..Default::default()
        }
    }

    /// Sets the exchange.
    pub fn exchange(mut self, exchange: impl Into<String>) -> Self {
        self.exchange = Some(exchange.into());
        self
    }

    /// Sets the server.
    pub fn server(mut self, server: impl Into<String>) -> Self {
        self.server = Some(server.into());
        self
    }

    /// Sets the namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets the version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Sets fanout.
    pub fn fanout(mut self, fanout: bool) -> Self {
        self.fanout = fanout;
        self
    }

    /// Adds legacy namespaces accepted besides `namespace`.
    pub fn legacy_namespaces<I, S>(mut self, namespaces: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.legacy_namespaces = namespaces.into_iter().map(Into::into).collect();
        self
    }

    /// Whether a request in `namespace` is for this target: its namespace or one of
    /// its legacy ones (what a dispatcher accepts).
    pub fn accepts_namespace(&self, namespace: Option<&str>) -> bool {
        self.namespace.as_deref() == namespace
            || namespace.is_some_and(|n| self.legacy_namespaces.iter().any(|l| l == n))
    }

    /// The parsed version, 1.0 when unset.
    pub fn parsed_version(&self) -> crate::Result<Version> {
        match &self.version {
            None => Ok(Version::default()),
            Some(v) => v.parse(),
        }
    }

    /// The topic, which sending and listening need; an [`Error::InvalidTarget`]
    /// when it is missing or empty.
    ///
    /// [`Error::InvalidTarget`]: crate::Error::InvalidTarget
    pub fn required_topic(&self) -> crate::Result<&str> {
        self.topic
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| crate::Error::invalid_target("a topic is required", self))
    }

    /// The exchange to use with a transport whose default is `default_exchange`.
    pub fn exchange_or<'a>(&'a self, default_exchange: &'a str) -> &'a str {
        self.exchange.as_deref().unwrap_or(default_exchange)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let mut field = |name: &str, value: &Option<String>| {
            if let Some(v) = value {
                parts.push(format!("{name}={v}"));
            }
        };
        field("exchange", &self.exchange);
        field("topic", &self.topic);
        field("namespace", &self.namespace);
        field("version", &self.version);
        field("server", &self.server);
        if self.fanout {
            parts.push("fanout=true".into());
        }
        write!(f, "<Target {}>", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_namespaces_are_accepted() {
        let t = Target::namespace_only("new").legacy_namespaces(["old"]);
        assert!(t.accepts_namespace(Some("new")) && t.accepts_namespace(Some("old")));
        assert!(!t.accepts_namespace(None) && !t.accepts_namespace(Some("other")));
        assert!(Target::default().accepts_namespace(None));
    }

    #[test]
    fn display_lists_set_fields() {
        let t = Target::topic("t").server("s").fanout(true);
        assert_eq!(t.to_string(), "<Target topic=t, server=s, fanout=true>");
    }
}
