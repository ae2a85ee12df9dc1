//! [`StaticMap`]: a fixed map from configuration.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use messaging_core::{Error, Result};

use super::Matchmaker;
use crate::destination::{Destination, Member};

/// The name of entries that serve every destination.
const ANY: &str = "*";

/// A fixed `name → hosts` map (`zmq_static_targets`); registrations are ignored.
///
/// A name is what [`Destination::static_name`] gives (`topic`, `topic.server` or
/// `topic.priority`), or `*` for every destination; it may appear several times, one
/// host each. A lookup returns the hosts of the destination's name in configuration
/// order, then those of `*`, each once. The map knows no pools, so notifications sent
/// through it reach each pool of a node once (see [`crate::destination`]).
#[derive(Debug, Clone, Default)]
pub struct StaticMap {
    /// `(name, host:port)` in configuration order.
    entries: Arc<[(String, String)]>,
    /// Whether the first ignored registration was logged (once is enough to explain).
    told: Arc<AtomicBool>,
}

impl StaticMap {
    /// The map of `entries`, each `name=host:port`.
    ///
    /// Errors are [`Error::Config`] naming the first bad entry: no `=`, an empty name, or
    /// an address that is not `host:port` with a port in 1-65535 (an IPv6 host goes in
    /// brackets, `[::1]:5000`).
    pub fn from_entries(entries: &[String]) -> Result<StaticMap> {
        let parsed =
            entries
                .iter()
                .map(|entry| {
                    parse_entry(entry).map_err(|why| {
                        Error::Config(format!(
                        "[oslo_messaging_zmq] zmq_static_targets: bad entry {entry:?}: {why} \
                         (entries are name=host:port)"
                    ).into())
                    })
                })
                .collect::<Result<Vec<_>>>()?;
        Ok(StaticMap {
            entries: parsed.into(),
            told: Arc::default(),
        })
    }

    fn ignore(&self, what: &str) {
        if !self.told.swap(true, Ordering::Relaxed) {
            tracing::debug!(
                "static matchmaker: {what} ignored (zmq_static_targets is fixed; logged once)"
            );
        }
    }
}

/// `(name, address)` of one `name=host:port` entry, or why it is refused.
fn parse_entry(entry: &str) -> std::result::Result<(String, String), String> {
    let (name, address) = entry.split_once('=').ok_or_else(|| "no '='".to_string())?;
    let (name, address) = (name.trim(), address.trim());
    if name.is_empty() {
        return Err("empty name".into());
    }
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("address {address:?} has no port"))?;
    let bare = match host.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .filter(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
            .ok_or_else(|| format!("{host:?} is not a bracketed IPv6 address"))?,
        None if host.contains(':') => {
            return Err(format!("IPv6 host {host:?} must be in brackets"));
        }
        None => host,
    };
    if bare.is_empty() {
        return Err(format!("address {address:?} has no host"));
    }
    // `#` would end the address in a member's text form, `/` in a destination's.
    if bare.contains(|c: char| c.is_whitespace() || c == '#' || c == '/' || c == '@') {
        return Err(format!("host {host:?} holds a space, '#', '/' or '@'"));
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok((name.to_string(), address.to_string())),
        _ => Err(format!("port {port:?} is not a number in 1-65535")),
    }
}

#[async_trait]
impl Matchmaker for StaticMap {
    async fn register(
        &self,
        _key: &Destination,
        _member: &Member,
        _ttl: Option<Duration>,
    ) -> Result<()> {
        self.ignore("registration");
        Ok(())
    }

    async fn unregister(&self, _key: &Destination, _member: &Member) -> Result<()> {
        self.ignore("unregistration");
        Ok(())
    }

    async fn lookup(&self, key: &Destination) -> Result<Vec<Member>> {
        let name = key.static_name();
        let named = self.entries.iter().filter(|(n, _)| *n == name);
        let any = self.entries.iter().filter(|(n, _)| n == ANY);
        let mut found: Vec<Member> = Vec::new();
        for (_, address) in named.chain(any) {
            if !found.iter().any(|m| m.address == *address) {
                found.push(Member::node(address.clone()));
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[&str]) -> Result<StaticMap> {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        StaticMap::from_entries(&entries)
    }

    fn topic(topic: &str) -> Destination {
        Destination::Topic {
            exchange: "x".into(),
            topic: topic.into(),
        }
    }

    fn addresses(members: Vec<Member>) -> Vec<String> {
        assert!(members.iter().all(|m| m.pool.is_none()));
        members.into_iter().map(|m| m.address).collect()
    }

    #[tokio::test]
    async fn lookups_follow_configuration_order_then_wildcards() {
        let mm = map(&[
            "*=any:9",
            "compute=h1:1",
            "compute.host2=h2:2",
            "notifications.info=n:3",
            "compute=h3:3",
            "compute=h1:1",
            "*=h3:3",
            " compute = [::1]:4 ",
        ])
        .unwrap();
        assert_eq!(
            addresses(mm.lookup(&topic("compute")).await.unwrap()),
            ["h1:1", "h3:3", "[::1]:4", "any:9"]
        );
        let server = Destination::Server {
            exchange: "x".into(),
            topic: "compute".into(),
            server: "host2".into(),
        };
        assert_eq!(
            addresses(mm.lookup(&server).await.unwrap()),
            ["h2:2", "any:9", "h3:3"]
        );
        let info = Destination::Notifications {
            exchange: "x".into(),
            topic: "notifications.info".into(),
            pool: None,
        };
        assert_eq!(
            addresses(mm.lookup(&info).await.unwrap()),
            ["n:3", "any:9", "h3:3"]
        );
        assert_eq!(
            addresses(mm.lookup(&topic("other")).await.unwrap()),
            ["any:9", "h3:3"]
        );
    }

    #[tokio::test]
    async fn registrations_are_ignored() {
        let mm = map(&["compute=h1:1"]).unwrap();
        let key = topic("compute");
        mm.register(&key, &Member::node("elsewhere:5"), None)
            .await
            .unwrap();
        mm.register(&key, &Member::node("h9:9"), Some(Duration::from_secs(1)))
            .await
            .unwrap();
        mm.unregister(&key, &Member::node("h1:1")).await.unwrap();
        assert_eq!(addresses(mm.lookup(&key).await.unwrap()), ["h1:1"]);
    }

    #[tokio::test]
    async fn an_empty_map_finds_nobody() {
        let mm = StaticMap::from_entries(&[]).unwrap();
        assert!(mm.lookup(&topic("compute")).await.unwrap().is_empty());
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in [
            "compute",
            "=h:1",
            " =h:1",
            "compute=h1",
            "compute=:1",
            "compute=h:",
            "compute=h:0",
            "compute=h:65536",
            "compute=h:x",
            "compute=::1:5",
            "compute=[nothost]:5",
            "compute=h#1:5",
            "compute=a b:5",
        ] {
            match map(&["ok=h:1", bad]) {
                Err(Error::Config(message)) => {
                    assert!(
                        message.contains(&format!("{bad:?}")),
                        "{bad}: message does not name the entry: {message}"
                    );
                    assert!(message.contains("zmq_static_targets"), "{message}");
                }
                other => panic!("{bad}: expected a configuration error, got {other:?}"),
            }
        }
    }
}
