//! Fuzzes the configuration loaders, `Config::from_ini_str` (the oslo.config INI
//! dialect) and `Config::from_toml_str`, with arbitrary UTF-8 text.
//!
//! Checks that neither panics, and that a configuration either loader accepts is
//! valid (`Config::validate`, which the loaders run), prints with `Debug`, and that
//! its transport URLs, when they parse, can be laid over their driver's section
//! (`Config::with_url_overrides`) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messaging_core::{Config, TransportUrl};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for loaded in [Config::from_ini_str(text), Config::from_toml_str(text)] {
        let Ok(config) = loaded else {
            continue;
        };
        config
            .validate()
            .expect("a configuration the loader accepted is valid");
        let _ = format!("{config:?}");
        for url in [
            config.rpc_transport_url(),
            config.notification_transport_url(),
        ] {
            let Ok(url) = TransportUrl::parse(url) else {
                continue;
            };
            let section = match url.driver() {
                "rabbit" => "oslo_messaging_rabbit",
                "kafka" => "oslo_messaging_kafka",
                "zmq" => "oslo_messaging_zmq",
                _ => continue,
            };
            let _ = config.with_url_overrides(section, &url, &[]);
        }
    }
});
