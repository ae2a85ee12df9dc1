//! The driver-level families of messaging-core's
//! [`catalog`](messaging_core::telemetry::catalog), labelled `driver="kafka"`.
//!
//! Every label value on the send path is a `&'static str` written out in the macro, so
//! the keys are statics and recording allocates nothing. Consumer lag is the exception:
//! its labels (group, topic, partition) come from librdkafka's statistics, every
//! [`STATISTICS_INTERVAL_MS`].

use messaging_core::telemetry::catalog;

/// How often librdkafka reports a group consumer's statistics, the source of
/// [`catalog::KAFKA_CONSUMER_LAG`]. Each report is a JSON document of every broker,
/// topic and partition the client knows: every few seconds costs little, and lag does
/// not need to be fresher than that.
pub(crate) const STATISTICS_INTERVAL_MS: &str = "5000";

/// What a record carries: the `kind` label of [`catalog::PUBLISHES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Publish {
    /// A request (call, cast or fanout).
    Rpc,
    /// A reply to a call.
    Reply,
    /// A notification.
    Notification,
}

/// Why a send attempt failed: the `reason` label of [`catalog::PUBLISH_FAILURES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The delivery report (or the topic's creation or metadata) said it failed.
    Error,
    /// The topic does not exist and the driver does not create it (RPC topics).
    Undeliverable,
}

/// The broker acknowledged a record of `kind`, `seconds` after it was handed to
/// librdkafka.
pub(crate) fn delivered(kind: Publish, seconds: f64) {
    match kind {
        Publish::Rpc => {
            metrics::counter!(catalog::PUBLISHES, "driver" => "kafka", "kind" => "rpc").increment(1)
        }
        Publish::Reply => {
            metrics::counter!(catalog::PUBLISHES, "driver" => "kafka", "kind" => "reply")
                .increment(1)
        }
        Publish::Notification => metrics::counter!(
            catalog::PUBLISHES, "driver" => "kafka", "kind" => "notification"
        )
        .increment(1),
    }
    metrics::histogram!(catalog::PUBLISH_CONFIRM_SECONDS, "driver" => "kafka").record(seconds);
}

/// A send attempt failed (one count per attempt: a record delivered on its third
/// attempt counts two failures and one publish).
pub(crate) fn failed(reason: Failure) {
    match reason {
        Failure::Error => metrics::counter!(
            catalog::PUBLISH_FAILURES, "driver" => "kafka", "reason" => "error"
        )
        .increment(1),
        Failure::Undeliverable => metrics::counter!(
            catalog::PUBLISH_FAILURES, "driver" => "kafka", "reason" => "undeliverable"
        )
        .increment(1),
    }
}

/// The part of librdkafka's statistics that consumer lag needs; serde skips the rest
/// without building it (the full [`rdkafka::Statistics`] holds every broker's latency
/// windows, allocated at each report).
#[derive(Debug, Default, serde::Deserialize)]
struct LagStatistics {
    #[serde(default)]
    topics: std::collections::HashMap<String, LagTopic>,
}

/// One topic of a statistics report.
#[derive(Debug, Default, serde::Deserialize)]
struct LagTopic {
    #[serde(default)]
    partitions: std::collections::HashMap<String, LagPartition>,
}

/// One partition of a topic in a statistics report.
#[derive(Debug, serde::Deserialize)]
struct LagPartition {
    /// Its id; -1 is librdkafka's queue of records not yet given a partition.
    partition: i32,
    /// Assigned to this consumer (librdkafka keeps partitions it was given before).
    #[serde(default)]
    desired: bool,
    /// The high watermark less the group's committed offset; -1 while either is
    /// unknown.
    #[serde(default = "unknown")]
    consumer_lag: i64,
}

/// A lag librdkafka does not know (its own value for that).
fn unknown() -> i64 {
    -1
}

impl LagStatistics {
    /// The lag of each partition assigned to the consumer whose lag librdkafka knows:
    /// `(topic, partition, lag)`. The internal partition -1 (librdkafka's
    /// unassigned-partition queue) and partitions without a known lag are left out.
    fn lags(&self) -> impl Iterator<Item = (&str, i32, i64)> {
        self.topics.iter().flat_map(|(topic, t)| {
            t.partitions
                .values()
                .filter(|p| p.partition >= 0 && p.desired && p.consumer_lag >= 0)
                .map(move |p| (topic.as_str(), p.partition, p.consumer_lag))
        })
    }
}

/// Sets [`catalog::KAFKA_CONSUMER_LAG`] from a statistics report of `group`'s
/// consumer. A gauge is set, never added to: members of one group report the same
/// group-wide lag for the partitions each holds. A partition this consumer gives away
/// keeps its last value until its new holder reports it (an exporter's idle timeout
/// drops a series nobody reports any more; the facade cannot remove one).
pub(crate) fn report_lag(group: &str, json: &[u8]) {
    let statistics: LagStatistics = match serde_json::from_slice(json) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(group, error = %e, "librdkafka statistics not understood");
            return;
        }
    };
    for (topic, partition, lag) in statistics.lags() {
        metrics::gauge!(
            catalog::KAFKA_CONSUMER_LAG,
            "driver" => "kafka",
            "group" => group.to_string(),
            "topic" => topic.to_string(),
            "partition" => partition.to_string()
        )
        .set(lag as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_assigned_partitions_with_a_known_lag_count() {
        let json = br#"{"name": "c", "brokers": {"b": {"rtt": {"min": 1}}}, "topics": {
            "t.info": {"topic": "t.info", "partitions": {
                "0": {"partition": 0, "desired": true, "consumer_lag": 7},
                "1": {"partition": 1, "desired": true, "consumer_lag": -1},
                "2": {"partition": 2, "desired": false, "consumer_lag": 3},
                "-1": {"partition": -1, "desired": false, "consumer_lag": -1}
            }}}}"#;
        let statistics: LagStatistics = serde_json::from_slice(json).unwrap();
        let lags: Vec<_> = statistics.lags().collect();
        assert_eq!(lags, [("t.info", 0, 7)]);
    }
}
