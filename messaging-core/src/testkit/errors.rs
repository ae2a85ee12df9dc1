//! Checks for a driver's error tests: that an error keeps its library's error as
//! `source()`, and that no secret shows anywhere in it.

use std::error::Error as StdError;

use crate::Error;

/// Panics if `secret` shows in `error` or in any error of its `source()` chain,
/// displayed or debugged.
///
/// ```
/// use messaging_core::testkit::errors::assert_secret_hidden;
/// let error = messaging_core::Error::Transport("login refused for nova".into());
/// assert_secret_hidden(&error, "s3cret-pw");
/// ```
pub fn assert_secret_hidden(error: &Error, secret: &str) {
    let mut next: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = next {
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains(secret), "the secret shows in {text}");
        }
        next = e.source();
    }
}

/// The error's `source()` as the library error type `T`; panics naming the error if
/// it has none or another.
pub fn source_of<T: StdError + 'static>(error: &Error) -> &T {
    error
        .source()
        .and_then(|s| s.downcast_ref::<T>())
        .unwrap_or_else(|| {
            panic!(
                "a {} as the source of {error:?}",
                std::any::type_name::<T>()
            )
        })
}
