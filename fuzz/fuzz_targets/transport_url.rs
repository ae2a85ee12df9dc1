//! Fuzzes `TransportUrl::parse` with arbitrary UTF-8.
//!
//! Checks that parsing never panics, and that a URL that parses prints (`Display`,
//! oslo's `__str__`) to text that parses back to the same value, query included.
//! As the crate's own round-trip tests state, `__str__` writes nothing for both a
//! missing and an empty virtual host, so a missing one comes back as `Some("")`.
//! The printed form is also a fixed point of parse-then-print.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messaging_core::TransportUrl;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(url) = TransportUrl::parse(text) else {
        return;
    };
    let _ = url.driver();
    let _ = url.masked();
    let _ = format!("{url:?}");

    let shown = url.to_string();
    let again = TransportUrl::parse(&shown)
        .unwrap_or_else(|e| panic!("{text:?} printed as {shown:?}, which does not parse: {e}"));
    let mut expected = url.clone();
    expected.virtual_host.get_or_insert_with(String::new);
    assert_eq!(again, expected, "{text:?} printed as {shown:?}");
    assert_eq!(again.query, url.query, "{text:?} printed as {shown:?}");
    assert_eq!(again.to_string(), shown, "{text:?}");
});
