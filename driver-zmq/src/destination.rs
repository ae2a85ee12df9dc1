//! What a message is for, as the matchmaker keys registrations and frame 3 names it.
//!
//! | destination | text | matchmaker key of |
//! |---|---|---|
//! | every server of a topic | `rpc/<exchange>/<topic>` | bare calls and casts, fanout |
//! | one server | `rpc/<exchange>/<topic>/<server>` | directed calls and casts |
//! | notification listeners | `notify/<exchange>/<topic>.<priority>` | notifications |
//!
//! A notification sent to a node also names the pool it is for (`…#<pool>`, `…#` for
//! listeners without a pool); without a pool the node gives one copy to each of its
//! pools (the static matchmaker does not know pools). Components are
//! percent-encoded where they contain `/`, `#` or `%`.

use std::fmt;

use bytes::Bytes;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// Characters escaped in a component.
const RESERVED: &AsciiSet = &CONTROLS.add(b'/').add(b'#').add(b'%').add(b' ');

fn enc(s: &str) -> percent_encoding::PercentEncode<'_> {
    utf8_percent_encode(s, RESERVED)
}

fn dec(s: &str) -> Option<String> {
    percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// What a message is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// Every server of a topic: one of them for calls and casts, all for fanout.
    Topic {
        /// The exchange (`control_exchange` unless the target names one).
        exchange: String,
        /// The topic.
        topic: String,
    },
    /// One server of a topic.
    Server {
        /// The exchange.
        exchange: String,
        /// The topic.
        topic: String,
        /// The server.
        server: String,
    },
    /// The listeners of a notification topic (`<topic>.<priority>`).
    Notifications {
        /// The exchange.
        exchange: String,
        /// `<topic>.<priority>`.
        topic: String,
        /// The pool (`Some("")`: listeners without one); `None` in matchmaker keys
        /// and for "one copy to each pool".
        pool: Option<String>,
    },
}

impl Destination {
    /// The matchmaker key: the destination without its pool.
    pub fn key(&self) -> Destination {
        match self {
            Destination::Notifications {
                exchange, topic, ..
            } => Destination::Notifications {
                exchange: exchange.clone(),
                topic: topic.clone(),
                pool: None,
            },
            other => other.clone(),
        }
    }

    /// The name a static map uses: `topic`, `topic.server` or `topic.priority`.
    pub fn static_name(&self) -> String {
        match self {
            Destination::Topic { topic, .. } | Destination::Notifications { topic, .. } => {
                topic.clone()
            }
            Destination::Server { topic, server, .. } => format!("{topic}.{server}"),
        }
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Option<Destination> {
        let (kind, rest) = text.split_once('/')?;
        match kind {
            "rpc" => {
                let parts: Vec<&str> = rest.split('/').collect();
                match parts.as_slice() {
                    [exchange, topic] => Some(Destination::Topic {
                        exchange: dec(exchange)?,
                        topic: dec(topic)?,
                    }),
                    [exchange, topic, server] => Some(Destination::Server {
                        exchange: dec(exchange)?,
                        topic: dec(topic)?,
                        server: dec(server)?,
                    }),
                    _ => None,
                }
            }
            "notify" => {
                let (exchange, rest) = rest.split_once('/')?;
                let (topic, pool) = match rest.split_once('#') {
                    Some((topic, pool)) => (topic, Some(dec(pool)?)),
                    None => (rest, None),
                };
                if topic.contains('/') {
                    return None;
                }
                Some(Destination::Notifications {
                    exchange: dec(exchange)?,
                    topic: dec(topic)?,
                    pool,
                })
            }
            _ => None,
        }
    }

    /// The destination frame: the text, written into a buffer of its exact size (a
    /// frame of any other size costs `Bytes` an allocation of its own).
    pub fn to_bytes(&self) -> Bytes {
        use fmt::Write as _;
        /// Counts what would be written.
        struct Length(usize);
        impl fmt::Write for Length {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.0 += s.len();
                Ok(())
            }
        }
        let mut length = Length(0);
        let _ = write!(length, "{self}");
        let mut text = String::with_capacity(length.0);
        let _ = write!(text, "{self}");
        Bytes::from(text)
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Topic { exchange, topic } => {
                write!(f, "rpc/{}/{}", enc(exchange), enc(topic))
            }
            Destination::Server {
                exchange,
                topic,
                server,
            } => write!(f, "rpc/{}/{}/{}", enc(exchange), enc(topic), enc(server)),
            Destination::Notifications {
                exchange,
                topic,
                pool,
            } => {
                write!(f, "notify/{}/{}", enc(exchange), enc(topic))?;
                match pool {
                    Some(pool) => write!(f, "#{}", enc(pool)),
                    None => Ok(()),
                }
            }
        }
    }
}

/// A registration's value: where a node is reached, and for notification listeners
/// which pool they are in. Text: `<address>` or `<address>#<pool>` (`#` alone for
/// listeners without a pool).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Member {
    /// `host:port` of the node's ROUTER, or `@<node id>` behind a proxy.
    pub address: String,
    /// The listeners' pool (`Some("")`: no pool); `None` when unknown (static maps).
    pub pool: Option<String>,
}

impl Member {
    /// A node with no pool information.
    pub fn node(address: impl Into<String>) -> Member {
        Member {
            address: address.into(),
            pool: None,
        }
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Option<Member> {
        let (address, pool) = match text.split_once('#') {
            Some((address, pool)) => (address, Some(dec(pool)?)),
            None => (text, None),
        };
        if address.is_empty() {
            return None;
        }
        Some(Member {
            address: address.to_string(),
            pool,
        })
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)?;
        match &self.pool {
            Some(pool) => write!(f, "#{}", enc(pool)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(d: Destination, text: &str) {
        assert_eq!(d.to_string(), text);
        assert_eq!(Destination::parse(text), Some(d));
    }

    #[test]
    fn text_forms_round_trip() {
        round_trip(
            Destination::Topic {
                exchange: "nova".into(),
                topic: "compute".into(),
            },
            "rpc/nova/compute",
        );
        round_trip(
            Destination::Server {
                exchange: "nova".into(),
                topic: "compute".into(),
                server: "host/1".into(),
            },
            "rpc/nova/compute/host%2F1",
        );
        round_trip(
            Destination::Notifications {
                exchange: "nova".into(),
                topic: "notifications.info".into(),
                pool: Some("bill#ing".into()),
            },
            "notify/nova/notifications.info#bill%23ing",
        );
        round_trip(
            Destination::Notifications {
                exchange: "nova".into(),
                topic: "notifications.info".into(),
                pool: Some(String::new()),
            },
            "notify/nova/notifications.info#",
        );
        round_trip(
            Destination::Notifications {
                exchange: "nova".into(),
                topic: "notifications.info".into(),
                pool: None,
            },
            "notify/nova/notifications.info",
        );
        for bad in ["", "rpc", "rpc/a", "rpc/a/b/c/d", "mail/a/b", "notify/a"] {
            assert_eq!(Destination::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn members_carry_pools() {
        let m = Member::parse("10.0.0.1:49153#billing").unwrap();
        assert_eq!(m.address, "10.0.0.1:49153");
        assert_eq!(m.pool.as_deref(), Some("billing"));
        assert_eq!(m.to_string(), "10.0.0.1:49153#billing");
        assert_eq!(Member::parse("h:1#").unwrap().pool.as_deref(), Some(""));
        assert_eq!(Member::parse("h:1").unwrap().pool, None);
        assert_eq!(Member::parse("#p"), None);
    }

    #[test]
    fn static_names() {
        let d = Destination::Server {
            exchange: "x".into(),
            topic: "compute".into(),
            server: "host1".into(),
        };
        assert_eq!(d.static_name(), "compute.host1");
    }
}
