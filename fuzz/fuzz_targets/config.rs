//! Fuzzes the configuration loaders, `Config::from_ini_str` (the oslo.config INI
//! dialect) and `Config::from_toml_str`, with arbitrary UTF-8 text.
//!
//! Checks that neither panics, and that a configuration either loader accepts is
//! valid (`Config::validate`, which the loaders run), prints with `Debug`, and that a
//! driver's section can be read from it (`Config::section`) and, when a transport URL
//! parses, with that URL's query laid over it (`Config::section_with_url`) without
//! panicking. The driver section is the ZeroMQ driver's, the one driver this crate
//! builds (the others need a broker client library); the reading is the core's, the
//! same for every driver.
#![no_main]

use driver_zmq::ZmqSection;
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
        if let Ok(zmq) = config.section::<ZmqSection>() {
            let _ = format!("{zmq:?}");
        }
        for url in [
            config.rpc_transport_url(),
            config.notification_transport_url(),
        ] {
            let Ok(url) = TransportUrl::parse(url) else {
                continue;
            };
            let _ = config.section_with_url::<ZmqSection>(&url);
        }
    }
});
