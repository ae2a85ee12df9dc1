//! What kind of failure a `lapin::Error` is, for the [`ErrorKind`] of the errors the
//! driver returns (callers act on the kind, not on lapin's texts).

use lapin::protocol::{AMQPErrorKind, AMQPHardError};
use messaging_core::ErrorKind;

/// The kind of a failure to open a connection: a 403 ACCESS_REFUSED then is the
/// login refused (lapin reports one during the handshake as text only).
pub(crate) fn of_connect(e: &lapin::Error) -> ErrorKind {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(err) if err.kind().get_id() == 403 => {
            ErrorKind::RefusedCredentials
        }
        _ if e.to_string().contains("ACCESS_REFUSED") => ErrorKind::RefusedCredentials,
        _ => of(e),
    }
}

/// The kind of a failure on an open connection or channel.
pub(crate) fn of(e: &lapin::Error) -> ErrorKind {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(err) => match err.kind() {
            // The broker (or an operator) closed the connection.
            AMQPErrorKind::Hard(AMQPHardError::CONNECTIONFORCED) => ErrorKind::ConnectionLost,
            // ACCESS_REFUSED, NOT_FOUND, RESOURCE_LOCKED, PRECONDITION_FAILED on a
            // channel; NOT_ALLOWED (a vhost refused) and the like on a connection.
            _ => ErrorKind::RefusedByBroker,
        },
        lapin::ErrorKind::IOError(io) if is_tls_failure(io) => ErrorKind::Tls,
        lapin::ErrorKind::IOError(io) => ErrorKind::of_io(io),
        lapin::ErrorKind::InvalidConnectionState(_)
        | lapin::ErrorKind::InvalidChannelState(..)
        | lapin::ErrorKind::InvalidChannel(_)
        | lapin::ErrorKind::MissingHeartbeatError => ErrorKind::ConnectionLost,
        lapin::ErrorKind::AuthProviderError(_) => ErrorKind::RefusedCredentials,
        _ => ErrorKind::Other,
    }
}

/// Whether an I/O error is rustls failing the handshake or a record (rustls wraps its
/// errors in `InvalidData` I/O errors).
fn is_tls_failure(io: &std::io::Error) -> bool {
    io.get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>())
}

/// The AMQP error kind and text of a broker error.
pub(crate) fn protocol_error(e: &lapin::Error) -> Option<(AMQPErrorKind, String)> {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(err) => {
            Some((err.kind().clone(), err.get_message().to_string()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_failures_by_kind() {
        let io = |kind| lapin::Error::from(std::io::Error::from(kind));
        use std::io::ErrorKind as Io;
        assert_eq!(of(&io(Io::ConnectionRefused)), ErrorKind::Unreachable);
        assert_eq!(of(&io(Io::ConnectionReset)), ErrorKind::ConnectionLost);
        let handshake = std::io::Error::new(
            Io::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(of_connect(&handshake.into()), ErrorKind::Tls);
    }
}
