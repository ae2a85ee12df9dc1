//! oslo.messaging's RPC metric families, named and labelled as oslo.metrics serves
//! them, so that one dashboard shows Python and Rust services alike.
//!
//! Every invocation is recorded through the [`metrics`] facade (nothing happens until
//! the application installs a recorder, such as a Prometheus exporter) and, when the
//! transport's `[oslo_messaging_metrics] metrics_enabled` is set, sent to the
//! oslo.metrics daemon as well ([`OsloMetricsSink`]).
//!
//! oslo.messaging emits the client families only; the server families are defined by
//! oslo.metrics but never sent by Python. Both are emitted here.
//!
//! Label values are written as the oslo.metrics daemon writes them (it applies Python's
//! `str()`): an unset field is `None`, a fanout cast is `True`.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata};
use serde_json::Value;

use super::catalog;
use super::oslo_metrics::OsloMetricsSink;
use crate::{Error, Target};

/// Client: invocations started (`call_type`, `exchange`, `topic`, `namespace`,
/// `version`, `server`, `fanout`, `method`, `timeout`, `process`).
pub const RPC_CLIENT_INVOCATION_START: &str = "oslo_messaging_rpc_client_invocation_start_total";
/// Client: invocations that ended without an exception.
pub const RPC_CLIENT_INVOCATION_END: &str = "oslo_messaging_rpc_client_invocation_end_total";
/// Client: seconds from sending to the reply (a call) or to the broker taking the
/// message (a cast), for invocations without an exception.
pub const RPC_CLIENT_PROCESSING_SECONDS: &str = "oslo_messaging_rpc_client_processing_seconds";
/// Client: invocations that failed, with the exception's class name (`exception`).
pub const RPC_CLIENT_EXCEPTION: &str = "oslo_messaging_rpc_client_exception_total";
/// Server: requests dispatched (`exchange`, `topic`, `server`, `endpoint`, `namespace`,
/// `version`, `method`, `process`).
pub const RPC_SERVER_INVOCATION_START: &str = "oslo_messaging_rpc_server_invocation_start_total";
/// Server: requests whose method returned.
pub const RPC_SERVER_INVOCATION_END: &str = "oslo_messaging_rpc_server_invocation_end_total";
/// Server: seconds the method ran, for requests whose method returned.
pub const RPC_SERVER_PROCESSING_SECONDS: &str = "oslo_messaging_rpc_server_processing_seconds";
/// Server: requests whose method failed, with the exception's class name.
pub const RPC_SERVER_EXCEPTION: &str = "oslo_messaging_rpc_server_exception_total";

/// The histogram buckets oslo.metrics uses for the processing-seconds families, for
/// exporters that take buckets per metric.
pub const PROCESSING_SECONDS_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 25.0, 50.0, 75.0,
    100.0,
];

/// Whether a client invocation waits for a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallType {
    /// `call`: waits for the reply.
    Call,
    /// `cast`: returns once the message is sent.
    Cast,
}

impl CallType {
    /// `call` or `cast`, as oslo's `call_type` label and OpenTelemetry's
    /// `messaging.operation` say it.
    pub fn as_str(self) -> &'static str {
        match self {
            CallType::Call => "call",
            CallType::Cast => "cast",
        }
    }
}

/// A label's value as oslo.messaging sends it: JSON `null`, a boolean or a string.
#[derive(Debug, Clone, PartialEq)]
enum LabelValue {
    None,
    Bool(bool),
    Text(String),
}

impl LabelValue {
    /// As the oslo.metrics daemon exports it (Python's `str()`).
    fn exported(&self) -> String {
        match self {
            LabelValue::None => "None".to_string(),
            LabelValue::Bool(true) => "True".to_string(),
            LabelValue::Bool(false) => "False".to_string(),
            LabelValue::Text(s) => s.clone(),
        }
    }

    fn of_ref(value: LabelRef<'_>) -> Self {
        match value {
            LabelRef::None => LabelValue::None,
            LabelRef::Bool(b) => LabelValue::Bool(b),
            LabelRef::Text(s) => LabelValue::Text(s.to_string()),
        }
    }

    fn is(&self, value: LabelRef<'_>) -> bool {
        match (self, value) {
            (LabelValue::None, LabelRef::None) => true,
            (LabelValue::Bool(a), LabelRef::Bool(b)) => *a == b,
            (LabelValue::Text(a), LabelRef::Text(b)) => a == b,
            _ => false,
        }
    }

    fn json(&self) -> Value {
        match self {
            LabelValue::None => Value::Null,
            LabelValue::Bool(b) => Value::Bool(*b),
            LabelValue::Text(s) => Value::String(s.clone()),
        }
    }
}

/// A label's value borrowed from the invocation: what the series cache is searched
/// with, so that an invocation whose series is known allocates nothing.
#[derive(Debug, Clone, Copy, Hash, PartialEq)]
enum LabelRef<'a> {
    None,
    Bool(bool),
    Text(&'a str),
}

impl<'a> LabelRef<'a> {
    fn of(value: Option<&'a str>) -> Self {
        value.map_or(LabelRef::None, LabelRef::Text)
    }
}

/// A client invocation's labels: the fields of the (prepared) target, as oslo takes
/// them. The exchange is the target's own (`None` for the transport's default) and
/// `timeout` is always `None`, as oslo sends it.
fn client_labels<'a>(
    target: &'a Target,
    method: &'a str,
    call_type: CallType,
    process: &'a str,
) -> [(&'static str, LabelRef<'a>); 10] {
    [
        ("call_type", LabelRef::Text(call_type.as_str())),
        ("exchange", LabelRef::of(target.exchange.as_deref())),
        ("topic", LabelRef::of(target.topic.as_deref())),
        ("namespace", LabelRef::of(target.namespace.as_deref())),
        ("version", LabelRef::of(target.version.as_deref())),
        ("server", LabelRef::of(target.server.as_deref())),
        (
            "fanout",
            if target.fanout {
                LabelRef::Bool(true)
            } else {
                LabelRef::None
            },
        ),
        ("method", LabelRef::Text(method)),
        ("timeout", LabelRef::None),
        ("process", LabelRef::Text(process)),
    ]
}

/// A server invocation's labels: the server's target (`exchange`, `topic`, `server`),
/// the endpoint's name, and the request's namespace, version and method.
fn server_labels<'a>(
    target: &'a Target,
    request: ServedRequest<'a>,
    process: &'a str,
) -> [(&'static str, LabelRef<'a>); 8] {
    [
        ("exchange", LabelRef::of(target.exchange.as_deref())),
        ("topic", LabelRef::of(target.topic.as_deref())),
        ("server", LabelRef::of(target.server.as_deref())),
        ("endpoint", LabelRef::of(request.endpoint)),
        ("namespace", LabelRef::of(request.namespace)),
        ("version", LabelRef::of(request.version)),
        ("method", LabelRef::Text(request.method)),
        ("process", LabelRef::Text(process)),
    ]
}

/// What the server labels take from a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServedRequest<'a> {
    /// The name of the endpoint that has the method, if one has it.
    pub(crate) endpoint: Option<&'a str>,
    /// The request's namespace.
    pub(crate) namespace: Option<&'a str>,
    /// The request's version.
    pub(crate) version: Option<&'a str>,
    /// The method asked for.
    pub(crate) method: &'a str,
}

/// The labels of one invocation, in oslo's order, `process` last.
#[derive(Debug, Clone)]
pub(crate) struct Labels(Vec<(&'static str, LabelValue)>);

impl Labels {
    fn of_refs(labels: &[(&'static str, LabelRef<'_>)]) -> Self {
        Labels(
            labels
                .iter()
                .map(|&(k, v)| (k, LabelValue::of_ref(v)))
                .collect(),
        )
    }

    fn is(&self, labels: &[(&'static str, LabelRef<'_>)]) -> bool {
        self.0.len() == labels.len()
            && self
                .0
                .iter()
                .zip(labels)
                .all(|((k, v), (key, value))| k == key && v.is(*value))
    }

    /// A client invocation's labels (see [`client_labels`]).
    #[cfg(test)]
    pub(crate) fn client(
        target: &Target,
        method: &str,
        call_type: CallType,
        process: &str,
    ) -> Self {
        Self::of_refs(&client_labels(target, method, call_type, process))
    }

    /// The exported value of the label `name`, empty when it is unset.
    fn text(&self, name: &str) -> &str {
        match self.0.iter().find(|(k, _)| *k == name) {
            Some((_, LabelValue::Text(s))) => s,
            _ => "",
        }
    }

    fn with_exception(&self, class: String) -> Labels {
        let mut labels = self.0.clone();
        // oslo puts `exception` before `process`.
        labels.insert(labels.len() - 1, ("exception", LabelValue::Text(class)));
        Labels(labels)
    }

    fn exported(&self) -> Vec<(&'static str, String)> {
        self.0.iter().map(|(k, v)| (*k, v.exported())).collect()
    }

    /// The `labels` object of an oslo.metrics datagram.
    pub(crate) fn json(&self) -> serde_json::Map<String, Value> {
        self.0
            .iter()
            .map(|(k, v)| (k.to_string(), v.json()))
            .collect()
    }
}

/// The families of one side.
#[derive(Debug)]
struct Families {
    start: &'static str,
    end: &'static str,
    seconds: &'static str,
    exception: &'static str,
    /// The gauge of invocations under way, and the labels it takes.
    in_flight: &'static str,
    in_flight_labels: &'static [&'static str],
}

const CLIENT: Families = Families {
    start: RPC_CLIENT_INVOCATION_START,
    end: RPC_CLIENT_INVOCATION_END,
    seconds: RPC_CLIENT_PROCESSING_SECONDS,
    exception: RPC_CLIENT_EXCEPTION,
    in_flight: catalog::RPC_CLIENT_CALLS_IN_FLIGHT,
    in_flight_labels: &["topic"],
};

const SERVER: Families = Families {
    start: RPC_SERVER_INVOCATION_START,
    end: RPC_SERVER_INVOCATION_END,
    seconds: RPC_SERVER_PROCESSING_SECONDS,
    exception: RPC_SERVER_EXCEPTION,
    in_flight: catalog::RPC_SERVER_REQUESTS_IN_FLIGHT,
    in_flight_labels: &["topic", "server"],
};

/// What the `metrics` macros would say about the families' series.
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The series of one side's invocations with one set of labels: the labels, the
/// recorder keys, and the handles the recorder gave for them, so that an update is an
/// atomic operation rather than a lookup of ten labels.
#[derive(Debug)]
pub(crate) struct Series {
    families: &'static Families,
    labels: Labels,
    start: Key,
    end: Key,
    seconds: Key,
    in_flight: Key,
    /// Registered on first use, with the recorder then current.
    handles: OnceLock<Handles>,
}

/// One recorder's handles on a [`Series`], each registered when first used (a series
/// appears on the exporter's page once it has something to show, as oslo's do).
///
/// The recorder is known by its address. A test's local recorder dropped while a
/// transport that recorded into it lives on, and another made at the same address, would
/// be taken for the same one: as the `metrics` crate says of handles in general, they
/// stay with the recorder they were registered with.
#[derive(Debug)]
struct Handles {
    /// Which recorder gives them: another one (a test's local recorder, or the global
    /// one installed after the series was made) is asked on every update instead.
    recorder: usize,
    start: OnceLock<Counter>,
    end: OnceLock<Counter>,
    seconds: OnceLock<Histogram>,
    in_flight: OnceLock<Gauge>,
}

/// Which recorder is current: the address of its value. A recorder of size zero has no
/// address of its own (two may share one), so none is given and nothing is kept for it.
fn current_recorder() -> Option<usize> {
    metrics::with_recorder(|r| {
        (std::mem::size_of_val(r) != 0).then(|| std::ptr::from_ref(r).cast::<()>() as usize)
    })
}

impl Series {
    fn new(families: &'static Families, labels: Labels) -> Self {
        let exported: Vec<Label> = labels
            .0
            .iter()
            .map(|(k, v)| Label::new(*k, v.exported()))
            .collect();
        let in_flight: Vec<Label> = families
            .in_flight_labels
            .iter()
            .map(|name| Label::new(*name, labels.text(name).to_string()))
            .collect();
        Series {
            start: Key::from_parts(families.start, exported.clone()),
            end: Key::from_parts(families.end, exported.clone()),
            seconds: Key::from_parts(families.seconds, exported),
            in_flight: Key::from_parts(families.in_flight, in_flight),
            families,
            labels,
            handles: OnceLock::new(),
        }
    }

    /// The handles of the current recorder, or `None` when it is not the one they
    /// were registered with (or has no identity).
    fn handles(&self) -> Option<&Handles> {
        let recorder = current_recorder()?;
        let handles = self.handles.get_or_init(|| Handles {
            recorder,
            start: OnceLock::new(),
            end: OnceLock::new(),
            seconds: OnceLock::new(),
            in_flight: OnceLock::new(),
        });
        (handles.recorder == recorder).then_some(handles)
    }

    /// Counts one in the counter of `key`: `cached`, registered once with the current
    /// recorder, or asked from the recorder each time.
    fn count(cached: Option<&OnceLock<Counter>>, key: &Key) {
        let register = || metrics::with_recorder(|r| r.register_counter(key, &METADATA));
        match cached {
            Some(c) => c.get_or_init(register).increment(1),
            None => register().increment(1),
        }
    }

    fn count_start(&self) {
        Self::count(self.handles().map(|h| &h.start), &self.start);
    }

    fn count_end(&self, seconds: f64) {
        let handles = self.handles();
        let register =
            || metrics::with_recorder(|r| r.register_histogram(&self.seconds, &METADATA));
        match handles {
            Some(h) => h.seconds.get_or_init(register).record(seconds),
            None => register().record(seconds),
        }
        Self::count(handles.map(|h| &h.end), &self.end);
    }

    /// Counts an invocation under way until the guard is dropped.
    pub(crate) fn in_flight(&self) -> InFlight {
        let register = || metrics::with_recorder(|r| r.register_gauge(&self.in_flight, &METADATA));
        let gauge = match self.handles() {
            Some(h) => h.in_flight.get_or_init(register).clone(),
            None => register(),
        };
        gauge.increment(1.0);
        InFlight(gauge)
    }
}

/// Counts one in a gauge while it lives: dropped (finished or cancelled), it counts
/// itself out again.
pub(crate) struct InFlight(metrics::Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// The series of a transport's invocations, by their labels. Bounded: past
/// [`SeriesCache::LIMIT`] sets of labels it starts again (label sets that many are an
/// exporter's problem long before they are this cache's).
#[derive(Debug, Default)]
pub(crate) struct SeriesCache(RwLock<HashMap<u64, Arc<Series>, foldhash::fast::RandomState>>);

impl SeriesCache {
    const LIMIT: usize = 4096;

    /// The series of a client invocation.
    pub(crate) fn client(
        &self,
        target: &Target,
        method: &str,
        call_type: CallType,
        process: &str,
    ) -> Arc<Series> {
        self.get(&CLIENT, &client_labels(target, method, call_type, process))
    }

    /// The series of a server invocation.
    pub(crate) fn server(
        &self,
        target: &Target,
        request: ServedRequest<'_>,
        process: &str,
    ) -> Arc<Series> {
        self.get(&SERVER, &server_labels(target, request, process))
    }

    fn get(
        &self,
        families: &'static Families,
        labels: &[(&'static str, LabelRef<'_>)],
    ) -> Arc<Series> {
        let mut hasher = foldhash::fast::FixedState::default().build_hasher();
        families.start.hash(&mut hasher);
        labels.hash(&mut hasher);
        let hash = hasher.finish();
        let known = |series: &Arc<Series>| {
            // The labels are compared too: two label sets may share a hash.
            std::ptr::eq(series.families, families) && series.labels.is(labels)
        };
        let cache = self.0.read().unwrap_or_else(|e| e.into_inner());
        if let Some(series) = cache.get(&hash).filter(|s| known(s)) {
            return series.clone();
        }
        drop(cache);
        let series = Arc::new(Series::new(families, Labels::of_refs(labels)));
        let mut cache = self.0.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= Self::LIMIT {
            cache.clear();
        }
        cache.insert(hash, series.clone());
        series
    }
}

/// One invocation being measured: `start` is counted when it is made, then
/// [`Invocation::finish`] counts the end and observes the seconds, or counts the
/// exception. An invocation dropped unfinished (its future cancelled) counts only its
/// start, as oslo's does when the caller goes away.
pub(crate) struct Invocation {
    series: Arc<Series>,
    began: Instant,
    sink: Option<OsloMetricsSink>,
}

impl Invocation {
    /// Starts measuring an invocation of `series`.
    pub(crate) fn start(series: Arc<Series>, sink: Option<OsloMetricsSink>) -> Self {
        series.count_start();
        if let Some(sink) = &sink {
            sink.increment(series.families.start, &series.labels);
        }
        Invocation {
            series,
            began: Instant::now(),
            sink,
        }
    }

    /// Records the outcome: the end and the seconds taken, or the exception's class.
    pub(crate) fn finish<T>(self, outcome: &Result<T, Error>) {
        match outcome {
            Ok(_) => self.succeeded(),
            Err(e) => self.failed(exception_class(e)),
        }
    }

    /// Records an invocation that ended without an exception.
    pub(crate) fn succeeded(self) {
        let seconds = self.began.elapsed().as_secs_f64();
        let series = &self.series;
        series.count_end(seconds);
        if let Some(sink) = &self.sink {
            sink.observe(series.families.seconds, seconds, &series.labels);
            sink.increment(series.families.end, &series.labels);
        }
    }

    /// Records an invocation that failed with an exception of class `class`.
    pub(crate) fn failed(self, class: String) {
        let families = self.series.families;
        let labels = self.series.labels.with_exception(class);
        metrics::counter!(families.exception, &labels.exported()).increment(1);
        if let Some(sink) = &self.sink {
            sink.increment(families.exception, &labels);
        }
    }
}

/// The class name a Python caller would see for `error` (`ex.__class__.__name__`):
/// oslo's exception classes, and `<class>_Remote` for a failure raised by the server,
/// as oslo names the exceptions it rebuilds from a reply.
pub(crate) fn exception_class(error: &Error) -> String {
    let oslo = match error {
        Error::Timeout(_) => "MessagingTimeout",
        Error::Remote(failure) => return format!("{}_Remote", failure.class),
        Error::NoSuchMethod { .. } => "NoSuchMethod",
        Error::UnsupportedVersion { .. } => "UnsupportedVersion",
        Error::InvalidTarget { .. } => "InvalidTarget",
        Error::InvalidUrl { .. } => "InvalidTransportURL",
        Error::UnknownDriver { .. } => "DriverLoadFailure",
        Error::DeliveryFailure(_) => "MessageDeliveryFailure",
        Error::Undeliverable { .. } => "MessageUndeliverable",
        Error::VersionCap { .. } => "RPCVersionCapError",
        Error::Serialization(_) | Error::Malformed(_) => "SerializationError",
        Error::ListenFailure { .. } => "ServerListenError",
        Error::Config(_) => "ConfigError",
        _ => "MessagingException",
    };
    oslo.to_string()
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;
    use crate::RemoteError;

    type Snapshot = Vec<(String, Vec<(String, String)>, DebugValue)>;

    fn recorded(f: impl FnOnce()) -> Snapshot {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, f);
        let mut out: Snapshot = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let labels = key
                    .labels()
                    .map(|l| (l.key().to_string(), l.value().to_string()))
                    .collect();
                (key.name().to_string(), labels, value)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn label_names(labels: &[(String, String)]) -> Vec<&str> {
        labels.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// oslo's client labels, in its order.
    const CLIENT_LABELS: [&str; 10] = [
        "call_type",
        "exchange",
        "topic",
        "namespace",
        "version",
        "server",
        "fanout",
        "method",
        "timeout",
        "process",
    ];

    #[test]
    fn a_client_call_counts_start_end_and_seconds_with_oslo_labels() {
        let target = Target::topic("compute").server("host1").version("1.2");
        let got = recorded(|| {
            let series = SeriesCache::default().client(&target, "add", CallType::Call, "nova-api");
            Invocation::start(series, None).finish(&Ok::<(), Error>(()));
        });
        let names: Vec<&str> = got.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(
            names,
            [
                RPC_CLIENT_INVOCATION_END,
                RPC_CLIENT_INVOCATION_START,
                RPC_CLIENT_PROCESSING_SECONDS
            ]
        );
        for (_, labels, _) in &got {
            assert_eq!(label_names(labels), CLIENT_LABELS);
            let value = |name: &str| labels.iter().find(|(k, _)| k == name).unwrap().1.clone();
            assert_eq!(value("call_type"), "call");
            assert_eq!(value("exchange"), "None");
            assert_eq!(value("topic"), "compute");
            assert_eq!(value("version"), "1.2");
            assert_eq!(value("server"), "host1");
            assert_eq!(value("fanout"), "None");
            assert_eq!(value("timeout"), "None");
            assert_eq!(value("process"), "nova-api");
        }
        assert!(matches!(got[0].2, DebugValue::Counter(1)));
        assert!(matches!(&got[2].2, DebugValue::Histogram(v) if v.len() == 1));
    }

    #[test]
    fn a_failed_fanout_cast_counts_start_and_the_exception_only() {
        let target = Target::topic("compute").fanout(true);
        let got = recorded(|| {
            let series = SeriesCache::default().client(&target, "reset", CallType::Cast, "");
            let failure = Error::DeliveryFailure(crate::Detail::new(
                crate::ErrorKind::ConnectionLost,
                "gone",
            ));
            Invocation::start(series, None).finish(&Err::<(), _>(failure));
        });
        let names: Vec<&str> = got.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(names, [RPC_CLIENT_EXCEPTION, RPC_CLIENT_INVOCATION_START]);
        let exception = &got[0].1;
        // oslo puts `exception` before `process`.
        let mut expected = CLIENT_LABELS.to_vec();
        expected.insert(9, "exception");
        assert_eq!(label_names(exception), expected);
        assert!(exception.contains(&("exception".into(), "MessageDeliveryFailure".into())));
        assert!(exception.contains(&("fanout".into(), "True".into())));
        assert!(exception.contains(&("call_type".into(), "cast".into())));
    }

    #[test]
    fn server_invocations_have_oslo_metrics_server_labels() {
        let target = Target::topic("compute").server("host1").exchange("nova");
        let got = recorded(|| {
            let cache = SeriesCache::default();
            let request = ServedRequest {
                endpoint: Some("ComputeAPI"),
                namespace: None,
                version: Some("1.0"),
                method: "add",
            };
            Invocation::start(cache.server(&target, request, "p"), None).succeeded();
            Invocation::start(cache.server(&target, request, "p"), None)
                .failed("ValueError".into());
        });
        let names: Vec<&str> = got.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(
            names,
            [
                RPC_SERVER_EXCEPTION,
                RPC_SERVER_INVOCATION_END,
                RPC_SERVER_INVOCATION_START,
                RPC_SERVER_PROCESSING_SECONDS
            ]
        );
        assert_eq!(
            label_names(&got[1].1),
            [
                "exchange",
                "topic",
                "server",
                "endpoint",
                "namespace",
                "version",
                "method",
                "process"
            ]
        );
        assert!(
            got[0]
                .1
                .contains(&("exception".into(), "ValueError".into()))
        );
        assert!(got[1].1.contains(&("endpoint".into(), "ComputeAPI".into())));
        assert!(got[1].1.contains(&("namespace".into(), "None".into())));
        assert!(matches!(got[2].2, DebugValue::Counter(2)));
    }

    #[test]
    fn a_label_set_has_one_series_and_each_set_its_own() {
        let cache = SeriesCache::default();
        let target = Target::topic("compute");
        let add = cache.client(&target, "add", CallType::Call, "p");
        assert!(Arc::ptr_eq(
            &add,
            &cache.client(&target, "add", CallType::Call, "p")
        ));
        for other in [
            cache.client(&target, "sub", CallType::Call, "p"),
            cache.client(&target, "add", CallType::Cast, "p"),
            cache.client(&target.clone().server("h"), "add", CallType::Call, "p"),
            cache.client(&target, "add", CallType::Call, "q"),
        ] {
            assert!(!Arc::ptr_eq(&add, &other), "{:?}", other.labels);
        }
        // Same values, other side: the server's families, not the client's series.
        let request = ServedRequest {
            endpoint: None,
            namespace: None,
            version: None,
            method: "add",
        };
        assert_eq!(
            cache.server(&target, request, "p").start.name(),
            RPC_SERVER_INVOCATION_START
        );
        assert_eq!(add.start.name(), RPC_CLIENT_INVOCATION_START);
    }

    #[test]
    fn a_series_counts_into_whichever_recorder_is_current() {
        let series = SeriesCache::default().client(&Target::topic("t"), "m", CallType::Cast, "");
        let (one, two) = (DebuggingRecorder::new(), DebuggingRecorder::new());
        let (one_seen, two_seen) = (one.snapshotter(), two.snapshotter());
        let count = || Invocation::start(series.clone(), None).succeeded();
        metrics::with_local_recorder(&one, count);
        // The handles kept for the first recorder must not take the second's counts.
        metrics::with_local_recorder(&two, || (0..2).for_each(|_| count()));
        metrics::with_local_recorder(&one, count);
        let starts = |seen: &metrics_util::debugging::Snapshotter| {
            let snapshot = seen.snapshot().into_vec();
            let start = snapshot
                .iter()
                .find(|(key, ..)| key.key().name() == RPC_CLIENT_INVOCATION_START);
            match start {
                Some((.., DebugValue::Counter(n))) => *n,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!((starts(&one_seen), starts(&two_seen)), (2, 2));
    }

    #[test]
    fn in_flight_counts_while_the_guard_lives() {
        let target = Target::topic("compute").server("host1");
        let request = ServedRequest {
            endpoint: None,
            namespace: None,
            version: None,
            method: "add",
        };
        let mut still_running = None;
        let got = recorded(|| {
            let series = SeriesCache::default().server(&target, request, "p");
            let finished = series.in_flight();
            still_running = Some(series.in_flight());
            drop(finished);
        });
        assert_eq!(got.len(), 1);
        let (name, labels, value) = &got[0];
        assert_eq!(name, catalog::RPC_SERVER_REQUESTS_IN_FLIGHT);
        assert_eq!(
            labels,
            &[
                ("topic".to_string(), "compute".to_string()),
                ("server".to_string(), "host1".to_string())
            ]
        );
        assert!(matches!(value, DebugValue::Gauge(g) if g.into_inner() == 1.0));
        drop(still_running);
    }

    #[test]
    fn exception_classes_are_the_ones_python_callers_see() {
        let remote = Error::Remote(Box::new(RemoteError::value_error("bad")));
        assert_eq!(exception_class(&remote), "ValueError_Remote");
        let timeout = Error::Timeout(crate::Detail::new(crate::ErrorKind::Timeout, "late"));
        assert_eq!(exception_class(&timeout), "MessagingTimeout");
    }

    #[test]
    fn labels_travel_to_oslo_metrics_as_json_nulls_booleans_and_strings() {
        let target = Target::topic("t").fanout(true);
        let json = Labels::client(&target, "m", CallType::Cast, "proc").json();
        assert_eq!(json["exchange"], Value::Null);
        assert_eq!(json["fanout"], Value::Bool(true));
        assert_eq!(json["method"], Value::String("m".into()));
        assert_eq!(json["process"], Value::String("proc".into()));
    }
}
