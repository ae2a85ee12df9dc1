//! The whole conformance suite against the real RabbitMQ (`RABBIT_URL`, default
//! `rabbit://guest:guest@127.0.0.1:5672/`; `scripts/services` starts it): with default
//! options, with fanout through stream queues (`rabbit_stream_fanout`), and with the
//! queue manager's stable queue names (`use_queue_manager`).

mod support;

use messaging_core::Config;
use messaging_core::testkit::TransportFactory;

/// Transports to the test broker configured by `ini`, with `query` added to the URL.
fn configured(ini: &'static str, query: fn() -> String) -> TransportFactory {
    TransportFactory::new(move || async move {
        support::require_broker().await;
        let url = support::url();
        let query = query();
        let url = match (query.is_empty(), url.contains('?')) {
            (true, _) => url,
            (false, true) => format!("{url}&{query}"),
            (false, false) => format!("{url}?{query}"),
        };
        support::registry()
            .transport(
                &url,
                &Config::from_ini_str(ini).expect("test configuration"),
            )
            .await
    })
}

fn rabbit() -> TransportFactory {
    configured("", String::new)
}

messaging_core::conformance_tests!(rabbit());

/// One stream queue per topic for fanout, read from an offset by every server.
mod stream_fanout {
    use super::*;

    fn streams() -> TransportFactory {
        configured(
            "[oslo_messaging_rabbit]\nrabbit_stream_fanout = true\n\
             rabbit_transient_quorum_queue = true\nrabbit_qos_prefetch_count = 200\n",
            String::new,
        )
    }

    messaging_core::conformance_tests!(streams());
}

/// Reply and fanout queues named `<host>:<process>:<N>`; the process name is this test
/// process's own, so that tests running side by side (each a process group of its own)
/// never share a name.
mod queue_manager {
    use super::*;

    fn stable_names() -> TransportFactory {
        configured("", || {
            format!(
                "use_queue_manager=true&hostname=conformance&processname=conformance-{}",
                std::process::id()
            )
        })
    }

    messaging_core::conformance_tests!(stable_names());
}
