//! The whole conformance suite on a real Zaqar server (`ZAQAR_URL`, default
//! `zaqar://127.0.0.1:8888`; `scripts/services zaqar` starts it).

mod support;

messaging_core::conformance_tests!(support::factory());
