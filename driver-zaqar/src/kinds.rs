//! Zaqar's answers and request failures as the core's error kinds.

use messaging_core::ErrorKind;
use reqwest::StatusCode;

/// The kind of a failed answer. Only 401 is about credentials: Zaqar answers 403 when
/// a message is deleted with a claim id that no longer holds it (an expired claim), and
/// Keystone's policies answer 403 for a project's refusal, neither of which a new
/// token changes.
pub fn of_status(status: StatusCode) -> ErrorKind {
    match status.as_u16() {
        401 => ErrorKind::RefusedCredentials,
        408 | 504 => ErrorKind::Timeout,
        400..=499 => ErrorKind::RefusedByBroker,
        _ => ErrorKind::Other,
    }
}

/// Whether a failed answer may succeed when asked again: the server's own failures
/// (Zaqar answers 503 while its storage cannot serve), time-outs and throttling; not
/// a refusal of the request itself.
pub fn status_is_temporary(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// The kind of a request that got no answer.
pub fn of_request(error: &reqwest::Error) -> ErrorKind {
    if error.is_timeout() {
        return ErrorKind::Timeout;
    }
    if error.is_connect() {
        // rustls' errors are not a dependency of this crate: a handshake failure is
        // told by its causes' text.
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            let text = cause.to_string().to_ascii_lowercase();
            if text.contains("certificate") || text.contains("tls") || text.contains("handshake") {
                return ErrorKind::Tls;
            }
            if let Some(io) = cause.downcast_ref::<std::io::Error>()
                && io.get_ref().is_none()
            {
                return ErrorKind::of_io(io);
            }
            source = cause.source();
        }
        return ErrorKind::Unreachable;
    }
    if error.is_body() || error.is_decode() || error.is_request() {
        return ErrorKind::ConnectionLost;
    }
    ErrorKind::Io
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(
            of_status(StatusCode::UNAUTHORIZED),
            ErrorKind::RefusedCredentials
        );
        assert_eq!(of_status(StatusCode::NOT_FOUND), ErrorKind::RefusedByBroker);
        assert_eq!(of_status(StatusCode::FORBIDDEN), ErrorKind::RefusedByBroker);
        assert_eq!(of_status(StatusCode::GATEWAY_TIMEOUT), ErrorKind::Timeout);
        assert_eq!(of_status(StatusCode::SERVICE_UNAVAILABLE), ErrorKind::Other);
        assert!(status_is_temporary(StatusCode::SERVICE_UNAVAILABLE));
        assert!(status_is_temporary(StatusCode::TOO_MANY_REQUESTS));
        assert!(!status_is_temporary(StatusCode::BAD_REQUEST));
        assert!(!status_is_temporary(StatusCode::UNAUTHORIZED));
    }
}
