//! The driver families of [`messaging_core::telemetry::catalog`], recorded through the
//! [`metrics`] facade with `driver="rabbit"`: publishes, publisher-confirm times,
//! refused and returned publishes, reconnects and the time spent without a connection.
//!
//! Every label set is a `static` [`Key`] built at compile time (its hash too), so
//! recording on the send path allocates nothing: the recorder is asked for the handle
//! of a ready key, as the `metrics` macros do for literal names and labels.

use std::time::{Duration, Instant};

use messaging_core::telemetry::catalog;
use metrics::{Key, Label, Level, Metadata};

/// Where the families come from, for recorders that filter on it.
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The `driver` label every family carries.
const DRIVER: Label = Label::from_static_parts("driver", "rabbit");

/// What a publish carries, for the `kind` label of [`catalog::PUBLISHES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A client's request (call or cast).
    Rpc,
    /// A server's reply or call-monitor heartbeat.
    Reply,
    /// A notification.
    Notification,
}

/// Why a publish failed, for the `reason` label of [`catalog::PUBLISH_FAILURES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The broker refused the message (`basic.nack`).
    Nack,
    /// A mandatory message no queue took came back (`basic.return`).
    Returned,
    /// The channel or connection failed during the publish, or the broker closed it
    /// (a declaration it refused before the publish counts here too).
    Error,
}

/// A `static` key of `family` with the `driver` label and, if given, one more: the
/// labels live in a `static` of their own (a key can only borrow them from one).
macro_rules! static_key {
    ($key:ident, $family:expr) => {
        static $key: Key = {
            static LABELS: [Label; 1] = [DRIVER];
            Key::from_static_parts($family, &LABELS)
        };
    };
    ($key:ident, $family:expr, $label:literal => $value:literal) => {
        static $key: Key = {
            static LABELS: [Label; 2] = [DRIVER, Label::from_static_parts($label, $value)];
            Key::from_static_parts($family, &LABELS)
        };
    };
}

static_key!(PUBLISHES_RPC, catalog::PUBLISHES, "kind" => "rpc");
static_key!(PUBLISHES_REPLY, catalog::PUBLISHES, "kind" => "reply");
static_key!(PUBLISHES_NOTIFICATION, catalog::PUBLISHES, "kind" => "notification");
static_key!(FAILURES_NACK, catalog::PUBLISH_FAILURES, "reason" => "nack");
static_key!(FAILURES_RETURNED, catalog::PUBLISH_FAILURES, "reason" => "returned");
static_key!(FAILURES_ERROR, catalog::PUBLISH_FAILURES, "reason" => "error");
static_key!(CONFIRM_SECONDS, catalog::PUBLISH_CONFIRM_SECONDS);
static_key!(RECONNECTS, catalog::RECONNECTS);
static_key!(DISCONNECTED_SECONDS, catalog::DISCONNECTED_SECONDS);

impl Kind {
    fn key(self) -> &'static Key {
        match self {
            Kind::Rpc => &PUBLISHES_RPC,
            Kind::Reply => &PUBLISHES_REPLY,
            Kind::Notification => &PUBLISHES_NOTIFICATION,
        }
    }
}

impl Failure {
    fn key(self) -> &'static Key {
        match self {
            Failure::Nack => &FAILURES_NACK,
            Failure::Returned => &FAILURES_RETURNED,
            Failure::Error => &FAILURES_ERROR,
        }
    }
}

fn count(key: &'static Key, n: u64) {
    metrics::with_recorder(|r| r.register_counter(key, &METADATA)).increment(n);
}

/// Counts a message handed to the broker (its `basic.publish` went out).
pub(crate) fn published(kind: Kind) {
    count(kind.key(), 1);
}

/// Counts a publish that failed, why.
pub(crate) fn failed(why: Failure) {
    count(why.key(), 1);
}

/// Records the time from a `basic.publish` to the broker's ack of it.
pub(crate) fn confirmed_after(took: Duration) {
    metrics::with_recorder(|r| r.register_histogram(&CONFIRM_SECONDS, &METADATA))
        .record(took.as_secs_f64());
}

/// Records what a publish's confirmation says: the time to an ack, and a nack or a
/// returned message as a failure. A failed wait for it is the channel or connection
/// failing.
pub(crate) fn settled(outcome: &lapin::Result<lapin::Confirmation>, published_at: Instant) {
    use lapin::Confirmation;
    match outcome {
        Ok(Confirmation::Ack(returned)) => {
            // A returned message is acked too: the broker confirmed it all the same.
            confirmed_after(published_at.elapsed());
            if returned.is_some() {
                failed(Failure::Returned);
            }
        }
        Ok(Confirmation::Nack(Some(_))) => failed(Failure::Returned),
        Ok(Confirmation::Nack(None)) => failed(Failure::Nack),
        Ok(Confirmation::NotRequested) => {}
        Err(_) => failed(Failure::Error),
    }
}

/// One connection's outages, for [`catalog::RECONNECTS`] and
/// [`catalog::DISCONNECTED_SECONDS`]. The counter takes whole seconds only, so the
/// part of a second left over from an outage is kept and added to the next one: the
/// total never falls more than a second behind the time really spent without the
/// connection.
#[derive(Debug, Default)]
pub(crate) struct Outages {
    /// When the connection was found lost, while it is not back.
    since: Option<Instant>,
    /// Time without the connection not counted yet (under a second).
    carry: Duration,
}

impl Outages {
    /// Notes that the connection is lost, at `at`, unless already noted: the outage
    /// counts from the first sign of it.
    pub(crate) fn lost(&mut self, at: Instant) {
        self.since.get_or_insert(at);
    }

    /// Forgets an outage in progress: the connection was closed on purpose, and the
    /// next one is not a reconnection.
    pub(crate) fn closed(&mut self) {
        self.since = None;
    }

    /// The connection is back at `at`: if it had been lost, the whole seconds to add
    /// to the disconnected time (the rest carried over). `None` for a connection that
    /// was not lost (the first one).
    fn back(&mut self, at: Instant) -> Option<u64> {
        let since = self.since.take()?;
        Some(whole_seconds(
            &mut self.carry,
            at.saturating_duration_since(since),
        ))
    }

    /// The connection is back: counts a reconnect and the time without it, if it had
    /// been lost.
    pub(crate) fn reconnected(&mut self) {
        if let Some(seconds) = self.back(Instant::now()) {
            count(&RECONNECTS, 1);
            count(&DISCONNECTED_SECONDS, seconds);
        }
    }
}

/// The whole seconds of `carry` plus `outage`, leaving the fraction in `carry`.
fn whole_seconds(carry: &mut Duration, outage: Duration) -> u64 {
    let total = carry.saturating_add(outage);
    let seconds = total.as_secs();
    *carry = total - Duration::from_secs(seconds);
    seconds
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    #[test]
    fn fractions_of_a_second_carry_over_to_the_next_outage() {
        let mut carry = Duration::ZERO;
        assert_eq!(whole_seconds(&mut carry, Duration::from_millis(600)), 0);
        assert_eq!(whole_seconds(&mut carry, Duration::from_millis(600)), 1);
        assert_eq!(carry, Duration::from_millis(200));
        assert_eq!(whole_seconds(&mut carry, Duration::from_millis(3900)), 4);
        assert_eq!(carry, Duration::from_millis(100));
        // 0.6 + 0.6 + 3.9 = 5.1 s: five counted, the tenth still carried.
    }

    #[test]
    fn only_a_connection_that_was_lost_comes_back() {
        let start = Instant::now();
        let mut outages = Outages::default();
        assert_eq!(outages.back(start), None, "the first connection");
        outages.lost(start);
        // A later sign of the same outage does not move its start.
        outages.lost(start + Duration::from_secs(5));
        assert_eq!(outages.back(start + Duration::from_millis(2500)), Some(2));
        assert_eq!(outages.back(start + Duration::from_secs(9)), None, "once");
        outages.lost(start + Duration::from_secs(10));
        assert_eq!(outages.back(start + Duration::from_millis(10_500)), Some(1));
        outages.lost(start);
        outages.closed();
        assert_eq!(outages.back(start + Duration::from_secs(1)), None);
    }

    #[test]
    fn families_carry_the_driver_and_their_label() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            published(Kind::Rpc);
            published(Kind::Rpc);
            published(Kind::Reply);
            published(Kind::Notification);
            failed(Failure::Nack);
            failed(Failure::Returned);
            failed(Failure::Error);
            confirmed_after(Duration::from_millis(250));
            let mut outages = Outages::default();
            outages.reconnected();
            outages.lost(Instant::now() - Duration::from_millis(1500));
            outages.reconnected();
        });
        let snapshot: Vec<(Key, DebugValue)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(k, _, _, v)| (k.key().clone(), v))
            .collect();
        let get = |name: &str, label: Option<(&str, &str)>| {
            snapshot
                .iter()
                .find(|(k, _)| {
                    let labels: Vec<(&str, &str)> =
                        k.labels().map(|l| (l.key(), l.value())).collect();
                    let mut want = vec![("driver", "rabbit")];
                    want.extend(label);
                    k.name() == name && labels == want
                })
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("{name} {label:?} in {snapshot:?}"))
        };
        let counter = |name, label| match get(name, label) {
            DebugValue::Counter(n) => *n,
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(counter(catalog::PUBLISHES, Some(("kind", "rpc"))), 2);
        assert_eq!(counter(catalog::PUBLISHES, Some(("kind", "reply"))), 1);
        assert_eq!(
            counter(catalog::PUBLISHES, Some(("kind", "notification"))),
            1
        );
        for reason in ["nack", "returned", "error"] {
            assert_eq!(
                counter(catalog::PUBLISH_FAILURES, Some(("reason", reason))),
                1
            );
        }
        assert_eq!(counter(catalog::RECONNECTS, None), 1, "not the first one");
        assert_eq!(counter(catalog::DISCONNECTED_SECONDS, None), 1);
        match get(catalog::PUBLISH_CONFIRM_SECONDS, None) {
            DebugValue::Histogram(values) => {
                let seconds: Vec<f64> = values.iter().map(|v| v.0).collect();
                assert_eq!(seconds, [0.25]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn confirmations_are_sorted_by_what_they_say() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let at = Instant::now();
            settled(&Ok(lapin::Confirmation::Ack(None)), at);
            settled(&Ok(lapin::Confirmation::Nack(None)), at);
            settled(&Ok(lapin::Confirmation::NotRequested), at);
            settled(&Err(lapin::Error::from(std::io::Error::other("gone"))), at);
        });
        let snapshot = snapshotter.snapshot().into_vec();
        let find = |name: &str, value: Option<&str>| {
            snapshot
                .iter()
                .find(|(k, ..)| {
                    k.key().name() == name
                        && value.is_none_or(|v| k.key().labels().any(|l| l.value() == v))
                })
                .map(|(_, _, _, v)| v)
        };
        assert!(
            matches!(find(catalog::PUBLISH_CONFIRM_SECONDS, None), Some(DebugValue::Histogram(v)) if v.len() == 1)
        );
        assert_eq!(
            find(catalog::PUBLISH_FAILURES, Some("nack")),
            Some(&DebugValue::Counter(1))
        );
        assert_eq!(
            find(catalog::PUBLISH_FAILURES, Some("error")),
            Some(&DebugValue::Counter(1))
        );
        assert_eq!(find(catalog::PUBLISH_FAILURES, Some("returned")), None);
    }
}
