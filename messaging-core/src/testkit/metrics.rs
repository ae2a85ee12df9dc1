//! Reading what the code under test recorded through the `metrics` facade, for the
//! telemetry tests of the core and of every driver.
//!
//! A recorder is process-wide: [`snapshotter`] installs metrics-util's
//! `DebuggingRecorder` the first time it is called, and every test of the binary reads
//! that one. Reading it is taking a snapshot, and a snapshot resets counters and gauges
//! to 0 and drains histograms: a [`Delta`] is one snapshot, what was recorded since
//! the one before, and [`Recorded`] adds its deltas up for a test that reads several
//! times but checks totals.
//!
//! Lookups name a metric and some of its labels: every key of that name whose labels
//! include all of them counts (see [`matches()`]), so a test need not spell out the
//! labels it does not care about.
//!
//! ```
//! use messaging_core::testkit::metrics::Recorded;
//! let mut recorded = Recorded::new();
//! metrics::counter!("sent", "kind" => "rpc", "driver" => "memory").increment(2);
//! recorded.take();
//! metrics::counter!("sent", "kind" => "rpc", "driver" => "memory").increment(1);
//! let delta = recorded.take();
//! assert_eq!(delta.counter("sent", &[("kind", "rpc")]), 1);
//! assert_eq!(recorded.counter("sent", &[("kind", "rpc")]), 3);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use metrics::Key;
use metrics_util::CompositeKey;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// The snapshotter of this process's recorder, installing the recorder on the first
/// call: the tests of one binary share it, whichever of them comes first. Panics if
/// another recorder was installed, since what this one reads would then be nothing.
pub fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::set_global_recorder(recorder).expect("the only recorder of this process");
        snapshotter
    })
}

/// Whether `key` is of the metric `name` and its labels include every one of `labels`.
pub fn matches(key: &Key, name: &str, labels: &[(&str, &str)]) -> bool {
    key.name() == name
        && labels
            .iter()
            .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
}

/// One snapshot of the process's recorder: what was recorded since the snapshot
/// before. Its `Debug` lists every key and value, for assertion messages.
pub struct Delta(Values);

impl Delta {
    /// Takes a snapshot, installing the recorder if no test did yet. Taking one and
    /// dropping it is how a test clears what the tests before it recorded.
    pub fn take() -> Delta {
        let snapshot = snapshotter().snapshot().into_vec();
        Delta(Values(
            snapshot
                .into_iter()
                .map(|(key, _unit, _description, value)| (key, value))
                .collect(),
        ))
    }

    /// The sum of the counters `name` whose labels include `labels`, since the snapshot
    /// before; 0 if none was registered. Panics if one of them is not a counter.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.0.counter(name, labels)
    }

    /// The samples of the histograms `name` whose labels include `labels`, since the
    /// snapshot before. Panics if one of them is not a histogram.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.0.histogram(name, labels)
    }

    /// The sum of the gauges `name` whose labels include `labels` in this snapshot;
    /// `None` if none was registered. Since the snapshot before reset it to 0, a gauge
    /// that is `set` reads the value it was last set to since then (0 if it was not
    /// set again), and one moved by increments reads their net change since then: for
    /// where such a gauge is now, see [`Recorded::gauge`]. Panics if one of them is not
    /// a gauge.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0.gauge(name, labels)
    }
}

impl fmt::Debug for Delta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0.0).finish()
    }
}

/// Everything read from the process's recorder by one test, its snapshots added up:
/// counters are totals, histograms have every sample, and a gauge moved by increments
/// and decrements is where it is now (the sum of its changes).
#[derive(Debug, Default)]
pub struct Recorded {
    totals: Values,
}

impl Recorded {
    /// Nothing read yet. Installs the recorder if no test did: made before the scenario
    /// starts, it sees everything the scenario records, and its first [`take`] has
    /// whatever was recorded since the recorder was last read.
    ///
    /// [`take`]: Recorded::take
    pub fn new() -> Recorded {
        snapshotter();
        Recorded::default()
    }

    /// Takes a snapshot, adds it to the totals and returns it, for a test that also
    /// wants what was recorded since its last read (a gauge's latest `set`).
    pub fn take(&mut self) -> Delta {
        let delta = Delta::take();
        for (key, value) in &delta.0.0 {
            let total = self
                .totals
                .0
                .entry(key.clone())
                .or_insert_with(|| nothing(value));
            match (total, value) {
                (DebugValue::Counter(total), DebugValue::Counter(n)) => *total += n,
                (DebugValue::Gauge(total), DebugValue::Gauge(change)) => {
                    *total = (total.into_inner() + change.into_inner()).into();
                }
                (DebugValue::Histogram(total), DebugValue::Histogram(samples)) => {
                    total.extend_from_slice(samples);
                }
                (total, value) => unreachable!("{key:?} is of one kind: {total:?}, {value:?}"),
            }
        }
        delta
    }

    /// The total of the counters `name` whose labels include `labels`; 0 if none was
    /// registered. Panics if one of them is not a counter.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.totals.counter(name, labels)
    }

    /// Every sample of the histograms `name` whose labels include `labels`. Panics if
    /// one of them is not a histogram.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.totals.histogram(name, labels)
    }

    /// Where the gauges `name` whose labels include `labels`, moved by increments and
    /// decrements, are now: the sum of their changes in every snapshot; `None` if none
    /// was registered. A gauge that is `set` is read in the [`Delta`] of a snapshot
    /// instead. Panics if one of them is not a gauge.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.totals.gauge(name, labels)
    }
}

/// A value of `like`'s kind that adding to leaves as it is.
fn nothing(like: &DebugValue) -> DebugValue {
    match like {
        DebugValue::Counter(_) => DebugValue::Counter(0),
        DebugValue::Gauge(_) => DebugValue::Gauge(0.0.into()),
        DebugValue::Histogram(_) => DebugValue::Histogram(Vec::new()),
    }
}

/// Metrics and their values, of one snapshot or added up, with the lookups of both.
/// Keyed with their kind, as the recorder keeps them: a counter and a gauge of one
/// name and labels are two metrics.
#[derive(Debug, Default)]
struct Values(BTreeMap<CompositeKey, DebugValue>);

impl Values {
    /// The values of the keys [`matches()`] picks. A test that reads a metric as the
    /// wrong kind has the wrong name, so each lookup panics on a value of another kind.
    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a DebugValue> {
        self.0
            .iter()
            .filter(|(key, _)| matches(key.key(), name, labels))
            .map(|(_, value)| value)
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let count = |value: &DebugValue| match value {
            DebugValue::Counter(n) => *n,
            other => panic!("{name} is not a counter: {other:?}"),
        };
        self.matching(name, labels).map(count).sum()
    }

    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        let mut samples = Vec::new();
        for value in self.matching(name, labels) {
            let DebugValue::Histogram(these) = value else {
                panic!("{name} is not a histogram: {value:?}");
            };
            samples.extend(these.iter().map(|s| s.into_inner()));
        }
        samples
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let level = |value: &DebugValue| match value {
            DebugValue::Gauge(g) => g.into_inner(),
            other => panic!("{name} is not a gauge: {other:?}"),
        };
        self.matching(name, labels)
            .map(level)
            .reduce(|sum, g| sum + g)
    }
}
