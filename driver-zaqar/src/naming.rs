//! Queue names.
//!
//! Zaqar accepts `[A-Za-z0-9_.-]{1,64}`, and on Redis a `.` in a name breaks queue
//! listing and paging for the whole project, so the driver never writes one. Each part
//! of a name (a topic, a priority, a server) is escaped: ASCII letters, digits and `-`
//! stay, every other byte becomes `_` and two lowercase hex digits (`.` is `_2e`, `_` is
//! `_5f`). Parts are joined with `__`, which escaping never produces, so two different
//! lists of parts never meet:
//!
//! | purpose | queue |
//! |---|---|
//! | notifications to `<topic>.<priority>` | `<topic>__<priority>` |
//! | a listener pool's copy of them | `<topic>__<priority>__<pool>` |
//! | the pools listening to a topic and priority | `<topic>__<priority>___pools` |
//! | a target's servers, load balanced | `<exchange>__<topic>` |
//! | one server | `<exchange>__<topic>__<server>` |
//! | the servers of a target, for fanout and `at_least_once` | `<exchange>__<topic>___servers` |
//! | one transport's replies | `reply-<uuid>` |
//!
//! A fanout cast is posted to the queue of every server registered (see
//! [`membership`](crate::membership)).
//!
//! The `___pools` and `___servers` parts start with `_`, which an escaped
//! part never does, so they never meet a user's name. A name longer than 64 characters
//! keeps its first 31 and ends with `-` and the 32 hex digits of a UUID (v5) of the
//! whole name.
//!
//! ```
//! use driver_zaqar::naming;
//! assert_eq!(naming::notification_queue("notifications.info", None), "notifications__info");
//! assert_eq!(naming::notification_queue("nova.compute.info", Some("audit")), "nova_2ecompute__info__audit");
//! assert_eq!(naming::escape("host@be#pool"), "host_40be_23pool");
//! ```

use uuid::Uuid;

/// Zaqar's limit on a queue name's length.
pub const MAX_QUEUE_NAME: usize = 64;

/// Namespace of the UUIDs that shorten long names.
const SHORTENED: Uuid = Uuid::from_u128(0x6d0c_52c2_1b7e_4f4b_9a53_0a7e_5d1c_3e11);

/// One part of a name, escaped (see the module docs).
pub fn escape(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for byte in part.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("_{byte:02x}"));
        }
    }
    out
}

/// Escaped parts joined with `__`, shortened when too long.
fn join<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let name = parts.into_iter().map(escape).collect::<Vec<_>>().join("__");
    fit(name)
}

/// `name` if it fits Zaqar's limit, else its first 31 characters, `-` and a UUID of it.
fn fit(name: String) -> String {
    if name.len() <= MAX_QUEUE_NAME {
        return name;
    }
    let id = Uuid::new_v5(&SHORTENED, name.as_bytes())
        .simple()
        .to_string();
    // Escaped names are ASCII: any byte index is a character boundary.
    format!("{}-{id}", &name[..MAX_QUEUE_NAME - 33])
}

/// Splits a notification target's topic, `<topic>.<priority>`, at its last dot.
fn topic_and_priority(topic: &str) -> (&str, Option<&str>) {
    match topic.rsplit_once('.') {
        Some((topic, priority)) => (topic, Some(priority)),
        None => (topic, None),
    }
}

/// The queue of notifications sent to `<topic>.<priority>`, or of the copies for
/// `pool`.
pub fn notification_queue(topic_and_priority_: &str, pool: Option<&str>) -> String {
    let (topic, priority) = topic_and_priority(topic_and_priority_);
    join([Some(topic), priority, pool].into_iter().flatten())
}

/// The queue where the pools listening to `<topic>.<priority>` say so.
pub fn pool_registry(topic_and_priority_: &str) -> String {
    let (topic, priority) = topic_and_priority(topic_and_priority_);
    let base = join([Some(topic), priority].into_iter().flatten());
    fit(format!("{base}___pools"))
}

/// The queues of an RPC target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcQueues {
    /// Shared by the target's servers.
    pub shared: String,
    /// Of the server the target names, if it names one.
    pub server: Option<String>,
    /// Where the target's servers say they listen.
    pub registry: String,
}

impl RpcQueues {
    /// The queues of `topic` (and `server`) in `exchange`.
    pub fn new(exchange: &str, topic: &str, server: Option<&str>) -> RpcQueues {
        let base = [escape(exchange), escape(topic)].join("__");
        RpcQueues {
            shared: fit(base.clone()),
            server: server.map(|s| fit(format!("{base}__{}", escape(s)))),
            registry: fit(format!("{base}___servers")),
        }
    }
}

/// A new reply queue.
pub fn reply_queue() -> String {
    format!("reply-{}", Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= MAX_QUEUE_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    #[test]
    fn parts_never_meet() {
        assert_ne!(
            notification_queue("a__b.info", None),
            notification_queue("a.b__info", None)
        );
        assert_ne!(
            notification_queue("a.info", Some("b")),
            notification_queue("a.info__b", None)
        );
        let a = RpcQueues::new("x", "t_1", Some("s"));
        let b = RpcQueues::new("x", "t", Some("1__s"));
        assert_ne!(a.server, b.server);
        assert_ne!(
            a.registry,
            RpcQueues::new("x", "t", Some("_servers")).server.unwrap()
        );
    }

    #[test]
    fn names_are_valid_and_long_ones_shortened() {
        let long = "t".repeat(100);
        let queues = RpcQueues::new("openstack", &long, Some("host.example.org"));
        for name in [
            queues.shared.clone(),
            queues.server.clone().unwrap(),
            queues.registry.clone(),
            notification_queue(&format!("{long}.info"), Some("pool")),
            pool_registry(&format!("{long}.info")),
            reply_queue(),
        ] {
            assert!(valid(&name), "{name}");
        }
        assert_eq!(queues.shared.len(), 64);
        assert_ne!(
            queues.shared,
            queues.server.unwrap(),
            "same prefix, other UUID"
        );
        assert_eq!(
            RpcQueues::new("openstack", "compute", Some("host1")),
            RpcQueues {
                shared: "openstack__compute".into(),
                server: Some("openstack__compute__host1".into()),
                registry: "openstack__compute___servers".into(),
            }
        );
        assert_eq!(
            pool_registry("notifications.info"),
            "notifications__info___pools"
        );
    }
}
