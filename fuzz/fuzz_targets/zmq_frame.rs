//! Fuzzes the ZeroMQ driver's decoders: `Frame::parse` and `Frame::parse_batch` on
//! arbitrary multipart messages, and `Destination::parse` and `Member::parse` on
//! arbitrary text.
//!
//! The input is cut into frames, each one length byte followed by that many bytes
//! (fewer at the end of the input); the frame decoder only looks at frame sizes and
//! the first four frames, so frames of up to 255 bytes reach all of it.
//!
//! Checks that nothing panics; that `parse` accepts only five frames and
//! `parse_batch` yields one result per five; that a parsed frame has a UTF-8
//! destination and written out again (`into_message`) parses to itself; and that a
//! destination or member that parses prints to text that parses to the same value.
#![no_main]

use bytes::Bytes;
use driver_zmq::destination::{Destination, Member};
use driver_zmq::frame::Frame;
use libfuzzer_sys::fuzz_target;

/// The frames of the input: a length byte, then that many bytes, repeated.
fn split(mut data: &[u8]) -> Vec<Bytes> {
    let mut frames = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let (frame, rest) = rest.split_at(usize::from(len).min(rest.len()));
        frames.push(Bytes::copy_from_slice(frame));
        data = rest;
    }
    frames
}

fn check_text(text: &str) {
    if let Some(destination) = Destination::parse(text) {
        let shown = destination.to_string();
        assert_eq!(destination.to_bytes(), shown.as_bytes());
        assert_eq!(
            Destination::parse(&shown).as_ref(),
            Some(&destination),
            "{text:?} printed as {shown:?}"
        );
        let _ = destination.key();
        let _ = destination.static_name();
    }
    if let Some(member) = Member::parse(text) {
        let shown = member.to_string();
        assert_eq!(
            Member::parse(&shown).as_ref(),
            Some(&member),
            "{text:?} printed as {shown:?}"
        );
    }
}

fn check_frame(frame: &Frame) {
    let _ = frame.id_str();
    let _ = frame.kind.is_answer();
    assert_eq!(frame.destination_str().as_bytes(), &frame.destination[..]);
    check_text(frame.destination_str());
    let written = frame.clone().into_message([]).into_vec();
    assert_eq!(Frame::parse(written).as_ref(), Ok(frame));
}

fuzz_target!(|data: &[u8]| {
    let frames = split(data);
    for frame in &frames {
        if let Ok(text) = std::str::from_utf8(frame) {
            check_text(text);
        }
    }
    if let Ok(frame) = Frame::parse(frames.clone()) {
        assert_eq!(frames.len(), 5);
        check_frame(&frame);
    }
    if let Ok(batch) = Frame::parse_batch(frames.clone()) {
        let read: Vec<_> = batch.collect();
        assert_eq!(read.len() * 5, frames.len());
        for frame in read.iter().flatten() {
            check_frame(frame);
        }
    }
});
