//! Topic and consumer group names.
//!
//! Notifications use oslo's names, `<topic>.<priority>`, followed by `.<vhost>` when
//! the URL has a virtual host, on the producer *and* the consumer side (oslo appends
//! it on the producer only, so its own listeners miss such notifications).
//!
//! RPC topics are this driver's own, under `oslo.rpc.`/`oslo.fanout.`/`oslo.reply.`
//! so they never meet a notification topic:
//!
//! | purpose | topic | consumed by |
//! |---|---|---|
//! | a topic's servers, load balanced | `oslo.rpc.<exchange>.<topic>` | group of the same name |
//! | one server | `oslo.rpc.<exchange>.<topic>.<server>` | group of the same name |
//! | fanout | `oslo.fanout.<exchange>.<topic>` | each server, without a group, from the end |
//! | replies | `oslo.reply.<uuid>` | its transport, without a group, from the end |
//!
//! With a virtual host, `oslo.` becomes `oslo.<vhost>.`. Kafka topic names allow only
//! ASCII letters, digits, `.`, `_` and `-`, so a name part with other characters (or
//! a dot, which would make `a.b`/`c` and `a`/`b.c` meet) is written with `_` in their
//! place and a hash of the original appended: `host@be#pool` becomes
//! `host_be_pool-1b2c3d4e`.

use messaging_core::{Error, Result, Target};

/// Kafka's limit on topic name length.
const MAX_TOPIC_LEN: usize = 249;

/// The topic of a notification sent to `<topic>.<priority>` (the target's topic).
pub fn notification_topic(topic_and_priority: &str, vhost: Option<&str>) -> String {
    match vhost {
        Some(v) => format!("{topic_and_priority}.{v}"),
        None => topic_and_priority.to_string(),
    }
}

/// The RPC topics of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcTopics {
    /// Shared by the topic's servers (and their consumer group).
    pub shared: String,
    /// Of one server, when the target names one.
    pub server: Option<String>,
    /// Of fanout casts.
    pub fanout: String,
}

impl RpcTopics {
    /// The topics of `target` in `exchange`.
    pub fn of(target: &Target, exchange: &str, vhost: Option<&str>) -> Result<RpcTopics> {
        let topic = target.required_topic()?;
        let prefix = match vhost {
            Some(v) => format!("oslo.{}", part(v)),
            None => "oslo".to_string(),
        };
        let base = format!("{}.{}", part(exchange), part(topic));
        let shared = format!("{prefix}.rpc.{base}");
        let server = target
            .server
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| format!("{shared}.{}", part(s)));
        let topics = RpcTopics {
            fanout: format!("{prefix}.fanout.{base}"),
            shared,
            server,
        };
        for name in [Some(&topics.shared), topics.server.as_ref()]
            .into_iter()
            .flatten()
        {
            if name.len() > MAX_TOPIC_LEN {
                return Err(Error::invalid_target(
                    format!("its Kafka topic {name:?} is longer than {MAX_TOPIC_LEN} characters"),
                    target,
                ));
            }
        }
        Ok(topics)
    }

    /// Where a request to `target` (the one these topics are of) goes.
    pub fn destination(&self, target: &Target) -> &str {
        if target.fanout {
            &self.fanout
        } else {
            self.server.as_deref().unwrap_or(&self.shared)
        }
    }
}

/// A new reply topic for one transport.
pub fn reply_topic(vhost: Option<&str>) -> String {
    let id = uuid::Uuid::new_v4().simple();
    match vhost {
        Some(v) => format!("oslo.{}.reply.{id}", part(v)),
        None => format!("oslo.reply.{id}"),
    }
}

/// Whether `name` can be a Kafka topic as it is.
pub fn is_valid_topic(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOPIC_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// One part of a topic name: itself when it has only letters, digits, `_` and `-`,
/// else an escaped form with a hash of the original (see the module docs).
fn part(name: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-');
    if !name.is_empty() && name.bytes().all(plain) {
        return name.to_string();
    }
    let escaped: String = name
        .bytes()
        .map(|b| if plain(b) { b as char } else { '_' })
        .collect();
    format!("{escaped}-{:08x}", fnv1a(name.as_bytes()))
}

/// 32-bit FNV-1a: stable across versions and platforms, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_topics_are_oslos_with_the_vhost_appended() {
        assert_eq!(
            notification_topic("notifications.info", None),
            "notifications.info"
        );
        assert_eq!(
            notification_topic("notifications.info", Some("vh")),
            "notifications.info.vh"
        );
    }

    #[test]
    fn rpc_topics_of_a_target() {
        let t = Target::topic("compute").server("host-1");
        let topics = RpcTopics::of(&t, "nova", None).unwrap();
        assert_eq!(topics.shared, "oslo.rpc.nova.compute");
        assert_eq!(
            topics.server.as_deref(),
            Some("oslo.rpc.nova.compute.host-1")
        );
        assert_eq!(topics.fanout, "oslo.fanout.nova.compute");
        assert_eq!(topics.destination(&t), "oslo.rpc.nova.compute.host-1");
        let shared = Target::topic("compute");
        let of_shared = RpcTopics::of(&shared, "nova", None).unwrap();
        assert_eq!(of_shared.destination(&shared), "oslo.rpc.nova.compute");
        let fanout = Target::topic("compute").fanout(true);
        let of_fanout = RpcTopics::of(&fanout, "nova", None).unwrap();
        assert_eq!(of_fanout.destination(&fanout), "oslo.fanout.nova.compute");
        let vh = RpcTopics::of(&t, "nova", Some("vh")).unwrap();
        assert_eq!(vh.shared, "oslo.vh.rpc.nova.compute");
    }

    #[test]
    fn names_kafka_cannot_hold_are_escaped_without_collisions() {
        let cinder = RpcTopics::of(
            &Target::topic("cinder-volume").server("host@lvm#pool"),
            "openstack",
            None,
        )
        .unwrap();
        let server = cinder.server.unwrap();
        assert!(is_valid_topic(&server), "{server}");
        assert!(server.starts_with("oslo.rpc.openstack.cinder-volume.host_lvm_pool-"));
        let a = RpcTopics::of(&Target::topic("a.b").server("c"), "x", None).unwrap();
        let b = RpcTopics::of(&Target::topic("a").server("b.c"), "x", None).unwrap();
        assert_ne!(a.server, b.server);
        assert_eq!(part("same"), part("same"));
        assert_ne!(part("a@b"), part("a#b"));
    }

    #[test]
    fn overlong_names_are_an_invalid_target() {
        let t = Target::topic("t").server("s".repeat(300));
        let e = RpcTopics::of(&t, "x", None).unwrap_err();
        assert!(matches!(e, Error::InvalidTarget { .. }), "{e:?}");
    }

    #[test]
    fn reply_topics_are_unique_and_valid() {
        let (a, b) = (reply_topic(None), reply_topic(Some("vh")));
        assert!(a.starts_with("oslo.reply.") && is_valid_topic(&a), "{a}");
        assert!(b.starts_with("oslo.vh.reply.") && is_valid_topic(&b), "{b}");
        assert_ne!(reply_topic(None), a);
    }
}
