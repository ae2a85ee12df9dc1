//! Fuzzes messaging-core's wire decoding with arbitrary bytes: the 2.0 envelope
//! (`envelope::decode`, `envelope::unwrap`), RPC requests (`Request::decode`),
//! notifications (`NotificationMessage::decode`), replies (`Reply::decode`) and the
//! failures they carry (`RemoteError::from_json`).
//!
//! Checks that no decoder panics; that the typed fast path of `Request::decode` and
//! `NotificationMessage::decode` agrees with the generic path (open the envelope into
//! a map, then `from_map`) whenever both accept the body; and that whatever was
//! decoded encodes again without error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messaging_core::RemoteError;
use messaging_core::wire::{ContextPacking, NotificationMessage, Reply, Request, envelope};

fuzz_target!(|data: &[u8]| {
    let map = envelope::decode(data);
    let request = Request::decode(data);
    let notification = NotificationMessage::decode(data);
    let reply = Reply::decode(data);

    if let Ok(map) = &map {
        if let (Ok(fast), Ok(slow)) = (&request, Request::from_map(map.clone())) {
            assert_eq!(
                *fast, slow,
                "Request::decode and Request::from_map disagree"
            );
        }
        if let (Ok(fast), Ok(slow)) = (&notification, NotificationMessage::from_map(map.clone())) {
            assert_eq!(
                *fast, slow,
                "NotificationMessage::decode and from_map disagree"
            );
        }
    }

    for packing in [ContextPacking::Flattened, ContextPacking::Nested] {
        if let Ok(request) = &request {
            request.encode(packing).expect("a decoded request encodes");
        }
        if let Ok(notification) = &notification {
            notification
                .encode(packing, true)
                .expect("a decoded notification encodes");
        }
    }
    if let Ok(reply) = &reply {
        reply.encode().expect("a decoded reply encodes");
        let _ = reply.is_heartbeat();
    }

    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = envelope::unwrap(value);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(failure) = RemoteError::from_json(text)
    {
        let _ = failure.to_json();
    }
});
