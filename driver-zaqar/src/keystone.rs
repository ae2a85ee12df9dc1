//! [`Keystone`]: the token requests carry when Zaqar runs behind Keystone, either one
//! given in the configuration or one Keystone v3 issues for a user's password, renewed
//! before it expires.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use messaging_core::{Detail, Error, ErrorKind, Result};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;

use crate::kinds;

/// A user's password credentials for Keystone v3 (`POST /v3/auth/tokens`), scoped to a
/// project. `Debug` hides the password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PasswordAuth {
    /// Keystone's URL, e.g. `https://keystone:5000/v3` (`/v3` is added when missing).
    pub auth_url: String,
    /// The user's name.
    pub username: String,
    /// The user's password. Secret.
    pub password: String,
    /// The user's domain. Default `Default`.
    pub user_domain_name: String,
    /// The project the token is scoped to.
    pub project_name: String,
    /// The project's domain. Default `Default`.
    pub project_domain_name: String,
}

impl fmt::Debug for PasswordAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordAuth")
            .field("auth_url", &self.auth_url)
            .field("username", &self.username)
            .field("password", &"****")
            .field("user_domain_name", &self.user_domain_name)
            .field("project_name", &self.project_name)
            .field("project_domain_name", &self.project_domain_name)
            .finish()
    }
}

/// Where tokens come from.
enum Source {
    /// A token from the configuration, used as it is.
    Fixed { token: String, project: String },
    /// Issued by Keystone for a password, renewed before it expires.
    Password(PasswordAuth),
}

/// A token in hand.
struct Token {
    value: String,
    project_id: String,
    /// When to ask for a new one: before it expires, by a tenth of its life, at least
    /// a minute.
    renew_at: DateTime<Utc>,
}

/// The tokens of one transport.
///
/// ```
/// use driver_zaqar::keystone::{Keystone, PasswordAuth};
/// let keystone = Keystone::password(PasswordAuth {
///     auth_url: "http://keystone:5000".into(),
///     username: "zaqar".into(),
///     password: "hunter2".into(),
///     project_name: "service".into(),
///     ..PasswordAuth::default()
/// });
/// assert!(!format!("{keystone:?}").contains("hunter2"));
/// ```
pub struct Keystone {
    source: Source,
    current: Mutex<Option<Token>>,
}

impl fmt::Debug for Keystone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Fixed { project, .. } => f
                .debug_struct("Keystone")
                .field("token", &"****")
                .field("project", project)
                .finish(),
            Source::Password(auth) => f.debug_struct("Keystone").field("auth", auth).finish(),
        }
    }
}

#[derive(Deserialize)]
struct Issued {
    token: IssuedToken,
}

#[derive(Deserialize)]
struct IssuedToken {
    expires_at: DateTime<Utc>,
    issued_at: Option<DateTime<Utc>>,
    project: Option<IssuedProject>,
}

#[derive(Deserialize)]
struct IssuedProject {
    id: String,
}

impl Keystone {
    /// Tokens Keystone issues for `auth`.
    pub fn password(mut auth: PasswordAuth) -> Self {
        for domain in [&mut auth.user_domain_name, &mut auth.project_domain_name] {
            if domain.is_empty() {
                *domain = "Default".to_string();
            }
        }
        Keystone {
            source: Source::Password(auth),
            current: Mutex::new(None),
        }
    }

    /// Always `token`, for `project` (the id).
    pub fn fixed(token: String, project: String) -> Self {
        Keystone {
            source: Source::Fixed { token, project },
            current: Mutex::new(None),
        }
    }

    /// A valid token, asking Keystone for a new one when the last is near its end.
    pub async fn token(&self, http: &reqwest::Client) -> Result<String> {
        self.with_current(http, |t| t.value.clone()).await
    }

    /// The id of the project the token is scoped to.
    pub async fn project_id(&self, http: &reqwest::Client) -> Result<String> {
        self.with_current(http, |t| t.project_id.clone()).await
    }

    /// Drops the token in hand if it is `refused` (Zaqar refused it), so that the next
    /// request gets a new one; a token issued since (after another refusal) stays.
    pub async fn forget(&self, refused: Option<&str>) {
        if let Source::Password(_) = self.source {
            let mut current = self.current.lock().await;
            if current.as_ref().map(|t| t.value.as_str()) == refused {
                *current = None;
            }
        }
    }

    async fn with_current<T>(
        &self,
        http: &reqwest::Client,
        read: impl FnOnce(&Token) -> T,
    ) -> Result<T> {
        let auth = match &self.source {
            Source::Fixed { token, project } => {
                return Ok(read(&Token {
                    value: token.clone(),
                    project_id: project.clone(),
                    renew_at: DateTime::<Utc>::MAX_UTC,
                }));
            }
            Source::Password(auth) => auth,
        };
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref()
            && Utc::now() < token.renew_at
        {
            return Ok(read(token));
        }
        let token = issue(http, auth).await?;
        tracing::debug!(renew_at = %token.renew_at, "Keystone issued a token");
        let value = read(&token);
        *current = Some(token);
        Ok(value)
    }
}

/// `POST /v3/auth/tokens` with a password.
async fn issue(http: &reqwest::Client, auth: &PasswordAuth) -> Result<Token> {
    let base = auth.auth_url.trim_end_matches('/');
    let url = if base.ends_with("/v3") {
        format!("{base}/auth/tokens")
    } else {
        format!("{base}/v3/auth/tokens")
    };
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": auth.username,
            "domain": {"name": auth.user_domain_name},
            "password": auth.password,
        }}},
        "scope": {"project": {
            "name": auth.project_name,
            "domain": {"name": auth.project_domain_name},
        }},
    }});
    // A refusal or an answer that is not a token does not change by asking again: only
    // no answer and 5xx are transport failures (temporary); a refused password is
    // RefusedCredentials, anything else a configuration error.
    let failed = |kind: ErrorKind, message: String| {
        let detail = Detail::new(kind, format!("Keystone {url}: {message}"));
        match kind {
            ErrorKind::Other | ErrorKind::Timeout | ErrorKind::RefusedCredentials => {
                Error::Transport(detail)
            }
            _ => Error::Config(detail.with_kind(ErrorKind::Config)),
        }
    };
    let answered_wrongly = |message: String| failed(ErrorKind::Config, message);
    let response = http.post(&url).json(&body).send().await.map_err(|e| {
        Error::Transport(
            Detail::new(kinds::of_request(&e), format!("Keystone {url}: no answer"))
                .with_source(e.without_url()),
        )
    })?;
    let status = response.status();
    if !status.is_success() {
        let kind = if status.is_server_error() {
            ErrorKind::Other
        } else {
            kinds::of_status(status)
        };
        return Err(failed(
            kind,
            format!("{status} for user {:?}", auth.username),
        ));
    }
    let value = response
        .headers()
        .get("X-Subject-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| answered_wrongly("no X-Subject-Token in the answer".into()))?;
    let issued: Issued = response
        .json()
        .await
        .map_err(|e| answered_wrongly(format!("not a v3 token: {e}")))?;
    let project_id = issued.token.project.map(|p| p.id).ok_or_else(|| {
        failed(
            ErrorKind::Other,
            "the token is not scoped to a project".into(),
        )
    })?;
    Ok(Token {
        value,
        project_id,
        renew_at: renew_at(issued.token.issued_at, issued.token.expires_at),
    })
}

/// When to renew a token: a tenth of its life before it expires, at least a minute.
fn renew_at(issued: Option<DateTime<Utc>>, expires: DateTime<Utc>) -> DateTime<Utc> {
    let life = issued
        .map(|i| (expires - i).to_std().unwrap_or_default())
        .unwrap_or(Duration::from_secs(3600));
    let margin = (life / 10).max(Duration::from_secs(60));
    expires - chrono::Duration::from_std(margin).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_a_tenth_of_the_life_early_and_at_least_a_minute() {
        let issued: DateTime<Utc> = "2026-12-07T10:00:00Z".parse().unwrap();
        let hour = issued + chrono::Duration::hours(1);
        assert_eq!(
            renew_at(Some(issued), hour),
            "2026-12-07T10:54:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let short = issued + chrono::Duration::minutes(5);
        assert_eq!(
            renew_at(Some(issued), short),
            "2026-12-07T10:04:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }
}
