//! The frames this driver sends: its own multipart format, versioned by its first
//! frame. See the crate docs for the whole protocol; this module reads and writes one
//! message.
//!
//! A message is five frames:
//!
//! | # | frame | content |
//! |---|---|---|
//! | 0 | version | `omsg-zmq/1` |
//! | 1 | kind | one ASCII byte, see [`Kind`] |
//! | 2 | id | the call's `msg_id` (replies carry the call's), or the message's own id |
//! | 3 | destination | UTF-8, what the message is for (see [`Destination`](crate::destination::Destination)); empty on answers |
//! | 4 | body | oslo's JSON message without the 2.0 envelope (this frame set is versioned by frame 0): a request, a notification or a reply |
//!
//! Through a proxy, one routing frame goes first (the peer's identity; see
//! [`proxy`](crate::proxy)). Sent directly, a multipart message may hold several
//! messages back to back ([`Frame::parse_batch`]).

use bytes::Bytes;
use zeromq::ZmqMessage;

/// Frame 0 of every message of this protocol version.
pub const VERSION: &[u8] = b"omsg-zmq/1";

/// What a message is (frame 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An RPC call: the receiver answers with a [`Kind::Reply`] (and heartbeats).
    Call,
    /// An RPC cast to one server: no answer.
    Cast,
    /// A cast sent with `at_least_once`: answered with [`Kind::Ack`] once a server
    /// took it, or [`Kind::Refused`].
    ConfirmedCast,
    /// A fanout cast: delivered to every server of the topic on the receiving node.
    Fanout,
    /// A notification: the receiver answers with [`Kind::Ack`] once it is queued
    /// for a listener.
    Notify,
    /// A reply (or heartbeat) to a call, body in oslo's reply JSON.
    Reply,
    /// The receiver took a notification.
    Ack,
    /// The receiver has nobody for this destination (any more): the sender tries
    /// another node. The body says why.
    Refused,
    /// The receiver handed over casts and fanouts that came directly from the
    /// sender: the body is how many, in decimal. A sender keeps only so many of
    /// those on their way (`zmq_send_queue`), which is what bounds casts to a
    /// receiver that falls behind.
    Taken,
}

impl Kind {
    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        self.tag()[0]
    }

    /// The kind's frame, without allocating.
    fn frame(self) -> Bytes {
        Bytes::from_static(self.tag())
    }

    fn tag(self) -> &'static [u8] {
        match self {
            Kind::Call => b"C",
            Kind::Cast => b"S",
            Kind::ConfirmedCast => b"K",
            Kind::Fanout => b"F",
            Kind::Notify => b"N",
            Kind::Reply => b"R",
            Kind::Ack => b"A",
            Kind::Refused => b"X",
            Kind::Taken => b"T",
        }
    }

    /// The kind a byte stands for.
    pub fn from_byte(byte: u8) -> Option<Kind> {
        Some(match byte {
            b'C' => Kind::Call,
            b'S' => Kind::Cast,
            b'K' => Kind::ConfirmedCast,
            b'F' => Kind::Fanout,
            b'N' => Kind::Notify,
            b'R' => Kind::Reply,
            b'A' => Kind::Ack,
            b'X' => Kind::Refused,
            b'T' => Kind::Taken,
            _ => return None,
        })
    }

    /// Whether this kind answers another message (travels back to its sender).
    pub fn is_answer(self) -> bool {
        matches!(self, Kind::Reply | Kind::Ack | Kind::Refused | Kind::Taken)
    }

    /// Whether a sender counts this kind until the receiver says it was
    /// [`Kind::Taken`]: messages nobody answers.
    pub fn is_counted_until_taken(self) -> bool {
        matches!(self, Kind::Cast | Kind::Fanout)
    }
}

/// One message of this protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What it is.
    pub kind: Kind,
    /// The message or call id.
    pub id: Bytes,
    /// What it is for; empty on answers.
    pub destination: Bytes,
    /// The payload.
    pub body: Bytes,
}

/// Why frames could not be read as a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not five frames (or, in a batch, not a multiple of five).
    #[error("expected 5 frames per message, got {0}")]
    Count(usize),
    /// Frame 0 is not [`VERSION`].
    #[error("unsupported protocol version {0:?} (this node speaks omsg-zmq/1)")]
    Version(String),
    /// Frame 1 is not a known kind.
    #[error("unknown message kind {0:?}")]
    Kind(String),
    /// The destination is not UTF-8.
    #[error("destination is not UTF-8")]
    Destination,
}

impl Frame {
    /// A message of `kind`.
    pub fn new(
        kind: Kind,
        id: impl Into<Bytes>,
        destination: impl Into<Bytes>,
        body: impl Into<Bytes>,
    ) -> Frame {
        Frame {
            kind,
            id: id.into(),
            destination: destination.into(),
            body: body.into(),
        }
    }

    /// An answer of `kind` to message `id`.
    pub fn answer(kind: Kind, id: Bytes, body: impl Into<Bytes>) -> Frame {
        Frame::new(kind, id, Bytes::new(), body)
    }

    /// The destination as text.
    pub fn destination_str(&self) -> &str {
        // Checked in `parse`; a frame built locally is built from a &str.
        std::str::from_utf8(&self.destination).unwrap_or("")
    }

    /// The id as text (lossy: ids are ASCII).
    pub fn id_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.id)
    }

    /// The five frames, after `prefix` frames (routing identities).
    pub fn into_message(self, prefix: impl IntoIterator<Item = Bytes>) -> ZmqMessage {
        let prefix = prefix.into_iter();
        let mut frames: Vec<Bytes> = Vec::with_capacity(prefix.size_hint().0 + 5);
        frames.extend(prefix);
        frames.extend([
            Bytes::from_static(VERSION),
            self.kind.frame(),
            self.id,
            self.destination,
            self.body,
        ]);
        ZmqMessage::try_from(frames).expect("never empty")
    }

    /// Reads the five frames of a message (routing frames already taken off).
    pub fn parse(frames: Vec<Bytes>) -> Result<Frame, FrameError> {
        let five: [Bytes; 5] = frames
            .try_into()
            .map_err(|f: Vec<Bytes>| FrameError::Count(f.len()))?;
        Frame::from_five(five)
    }

    /// Reads the messages of a multipart message that may carry several back to back
    /// (a sender's batch, see the crate docs): one result per message, so one bad
    /// message costs only itself. Fails as a whole when the frames do not divide
    /// into messages.
    pub fn parse_batch(
        frames: Vec<Bytes>,
    ) -> Result<impl Iterator<Item = Result<Frame, FrameError>>, FrameError> {
        if frames.is_empty() || !frames.len().is_multiple_of(5) {
            return Err(FrameError::Count(frames.len()));
        }
        let mut frames = frames.into_iter();
        Ok(std::iter::from_fn(move || {
            let five = [
                frames.next()?,
                frames.next()?,
                frames.next()?,
                frames.next()?,
                frames.next()?,
            ];
            Some(Frame::from_five(five))
        }))
    }

    fn from_five(five: [Bytes; 5]) -> Result<Frame, FrameError> {
        let [version, kind, id, destination, body] = five;
        if version.as_ref() != VERSION {
            return Err(FrameError::Version(lossy_prefix(&version)));
        }
        let kind = match kind.as_ref() {
            [b] => Kind::from_byte(*b),
            _ => None,
        }
        .ok_or_else(|| FrameError::Kind(lossy_prefix(&kind)))?;
        if std::str::from_utf8(&destination).is_err() {
            return Err(FrameError::Destination);
        }
        Ok(Frame {
            kind,
            id,
            destination,
            body,
        })
    }
}

/// At most 32 bytes of a frame, for an error message.
fn lossy_prefix(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(32)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_a_routing_prefix() {
        let frame = Frame::new(Kind::Call, "m1", "rpc/nova/compute", "{}");
        let message = frame.clone().into_message([Bytes::from_static(b"peer")]);
        let mut frames = message.into_vec();
        assert_eq!(frames.remove(0), Bytes::from_static(b"peer"));
        assert_eq!(frames[0], Bytes::from_static(VERSION));
        assert_eq!(frames[1], Bytes::from_static(b"C"));
        assert_eq!(Frame::parse(frames).unwrap(), frame);
    }

    #[test]
    fn a_batch_reads_as_its_messages_one_by_one() {
        let one = Frame::new(Kind::Cast, "m1", "rpc/a/b", "{}");
        let two = Frame::new(Kind::Call, "m2", "rpc/a/c", "[]");
        let mut frames = one.clone().into_message([]).into_vec();
        frames.extend(two.into_message([]).into_vec());
        frames[5] = Bytes::from_static(b"omsg-zmq/0");
        frames.extend(one.clone().into_message([]).into_vec());
        let read: Vec<_> = Frame::parse_batch(frames).unwrap().collect();
        assert_eq!(
            read,
            vec![
                Ok(one.clone()),
                Err(FrameError::Version("omsg-zmq/0".into())),
                Ok(one.clone())
            ]
        );
        let mut uneven = one.into_message([]).into_vec();
        uneven.push(Bytes::from_static(b"extra"));
        assert_eq!(Frame::parse_batch(uneven).err(), Some(FrameError::Count(6)));
        assert_eq!(
            Frame::parse_batch(Vec::new()).err(),
            Some(FrameError::Count(0))
        );
    }

    #[test]
    fn every_kind_has_its_byte() {
        for kind in [
            Kind::Call,
            Kind::Cast,
            Kind::ConfirmedCast,
            Kind::Fanout,
            Kind::Notify,
            Kind::Reply,
            Kind::Ack,
            Kind::Refused,
            Kind::Taken,
        ] {
            assert_eq!(Kind::from_byte(kind.byte()), Some(kind));
        }
        assert_eq!(Kind::from_byte(b'?'), None);
    }

    #[test]
    fn malformed_messages_are_named() {
        let b = |s: &'static str| Bytes::from_static(s.as_bytes());
        assert_eq!(Frame::parse(vec![b("x")]), Err(FrameError::Count(1)));
        assert_eq!(
            Frame::parse(vec![b("1.0"), b("C"), b("m"), b("d"), b("{}")]),
            Err(FrameError::Version("1.0".into()))
        );
        assert_eq!(
            Frame::parse(vec![b("omsg-zmq/1"), b("CC"), b("m"), b("d"), b("{}")]),
            Err(FrameError::Kind("CC".into()))
        );
        assert_eq!(
            Frame::parse(vec![
                b("omsg-zmq/1"),
                b("C"),
                b("m"),
                Bytes::from_static(&[0xff, 0xfe]),
                b("{}")
            ]),
            Err(FrameError::Destination)
        );
    }
}
