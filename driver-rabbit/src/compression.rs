//! Message body compression as kombu does it: the `compression` header names the
//! codec; `application/x-gzip` is a zlib stream (kombu uses `zlib.compress`) and
//! `application/x-bz2` a bzip2 stream.

use std::borrow::Cow;
use std::io::{Read, Write};

use lapin::message::Delivery;
use lapin::types::AMQPValue;
use messaging_core::{Error, Result};

/// The name of the AMQP header carrying the codec.
pub const HEADER: &str = "compression";

/// A codec kombu understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// zlib, announced as `application/x-gzip`.
    Gzip,
    /// bzip2, announced as `application/x-bz2`.
    Bz2,
}

impl Compression {
    /// From the `kombu_compression` option (`gzip` or `bz2`).
    pub fn from_option(name: &str) -> Result<Compression> {
        match name {
            "gzip" => Ok(Compression::Gzip),
            "bz2" => Ok(Compression::Bz2),
            other => Err(Error::Config(
                format!(
                    "[oslo_messaging_rabbit] kombu_compression must be gzip or bz2, not {other:?}"
                )
                .into(),
            )),
        }
    }

    /// From the value of the `compression` header.
    pub fn from_header(value: &str) -> Result<Compression> {
        match value {
            "application/x-gzip" | "gzip" | "zlib" => Ok(Compression::Gzip),
            "application/x-bz2" | "bzip2" | "bz2" => Ok(Compression::Bz2),
            other => Err(Error::Malformed(format!(
                "unknown compression header {other:?}"
            ))),
        }
    }

    /// The header value announcing this codec.
    pub fn header_value(self) -> &'static str {
        match self {
            Compression::Gzip => "application/x-gzip",
            Compression::Bz2 => "application/x-bz2",
        }
    }

    /// Compresses a body.
    pub fn compress(self, body: &[u8]) -> Vec<u8> {
        let out = Vec::with_capacity(body.len() / 2 + 64);
        let written = match self {
            Compression::Gzip => {
                let mut e = flate2::write::ZlibEncoder::new(out, flate2::Compression::default());
                e.write_all(body).and_then(|()| e.finish())
            }
            Compression::Bz2 => {
                let mut e = bzip2::write::BzEncoder::new(out, bzip2::Compression::default());
                e.write_all(body).and_then(|()| e.finish())
            }
        };
        // Writing into a Vec cannot fail.
        written.unwrap_or_default()
    }

    /// Decompresses a body.
    pub fn decompress(self, body: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(body.len() * 4);
        let read = match self {
            Compression::Gzip => flate2::read::ZlibDecoder::new(body).read_to_end(&mut out),
            Compression::Bz2 => bzip2::read::BzDecoder::new(body).read_to_end(&mut out),
        };
        read.map_err(|e| Error::Malformed(format!("cannot decompress {self:?} body: {e}")))?;
        Ok(out)
    }
}

/// The body of a delivery, decompressed when its `compression` header says so.
pub(crate) fn body_of(delivery: &Delivery) -> Result<Cow<'_, [u8]>> {
    let codec = delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(HEADER));
    match codec {
        None => Ok(Cow::Borrowed(&delivery.data)),
        Some(AMQPValue::LongString(s)) => {
            let name = String::from_utf8_lossy(s.as_bytes());
            Ok(Cow::Owned(
                Compression::from_header(&name)?.decompress(&delivery.data)?,
            ))
        }
        Some(AMQPValue::ShortString(s)) => Ok(Cow::Owned(
            Compression::from_header(s.as_str())?.decompress(&delivery.data)?,
        )),
        Some(other) => Err(Error::Malformed(format!(
            "compression header is not a string: {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_matches_python_zlib() {
        for c in [Compression::Gzip, Compression::Bz2] {
            let body = br#"{"oslo.version": "2.0", "oslo.message": "{}"}"#;
            assert_eq!(c.decompress(&c.compress(body)).unwrap(), body);
            assert_eq!(Compression::from_header(c.header_value()).unwrap(), c);
        }
        // Python: zlib.compress(b'{"a": 1}')
        let python = [
            0x78, 0x9c, 0xab, 0x56, 0x4a, 0x54, 0xb2, 0x52, 0x30, 0xac, 0x05, 0x00, 0x09, 0xe5,
            0x02, 0x29,
        ];
        assert_eq!(
            Compression::Gzip.decompress(&python).unwrap(),
            br#"{"a": 1}"#
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let e = Compression::Gzip.decompress(b"not zlib").unwrap_err();
        assert!(matches!(e, Error::Malformed(_)), "{e:?}");
        assert!(Compression::from_header("application/x-lz4").is_err());
    }
}
