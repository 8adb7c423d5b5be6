//! A browser-style login: the `__Host-roomd_session` cookie and the CSRF token that goes with it.

use crate::HarnessError;
use crate::http::ApiResponse;

/// Name of roomd's session cookie (docs/api.md).
pub const SESSION_COOKIE: &str = "__Host-roomd_session";

#[derive(Debug, Clone)]
pub struct Session {
    pub username: String,
    pub role: String,
    /// `__Host-roomd_session=<value>`, ready for a `Cookie` header.
    pub cookie: String,
    /// The whole `Set-Cookie` header roomd sent, for attribute checks.
    pub set_cookie: String,
    pub csrf_token: String,
}

impl Session {
    /// Reads a session from a successful `POST /api/v1/session` answer.
    pub fn from_login_response(response: &ApiResponse) -> Result<Session, HarnessError> {
        let bad = |message: String| HarnessError::UnexpectedBody {
            what: "POST /api/v1/session".to_owned(),
            message,
        };
        let set_cookie = response
            .header_all("set-cookie")
            .into_iter()
            .find(|c| c.starts_with(&format!("{SESSION_COOKIE}=")))
            .ok_or_else(|| bad(format!("no {SESSION_COOKIE} cookie was set")))?
            .to_owned();
        let cookie = set_cookie
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let body = response.json()?;
        let field = |name: &str| {
            body.get(name)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("no string {name:?} in {body}")))
        };
        Ok(Session {
            username: field("username")?,
            role: field("role")?,
            csrf_token: field("csrf_token")?,
            cookie,
            set_cookie,
        })
    }

    /// The attributes of the `Set-Cookie` header (`HttpOnly`, `SameSite=Strict`, ...), as
    /// written, without the name=value pair.
    pub fn cookie_attributes(&self) -> Vec<String> {
        self.set_cookie
            .split(';')
            .skip(1)
            .map(|a| a.trim().to_owned())
            .collect()
    }
}
