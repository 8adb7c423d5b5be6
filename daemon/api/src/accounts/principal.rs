//! Who is making a request, as far as authorisation and the audit log are concerned.

use super::permission::{Permission, allows};
use roomd_model::Role;

/// An authenticated caller: a user with a cookie session or an API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The username, or the token's name for a token.
    pub name: String,
    /// What the caller may do ([`Principal::may`]).
    pub role: Role,
    /// How the caller authenticated.
    pub kind: PrincipalKind,
}

/// How a [`Principal`] authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A browser session made by `POST /session`.
    Session,
    /// An API token; `id` is its public identifier (not the secret).
    Token {
        /// The token's id (8 hex digits).
        id: String,
    },
    /// A client certificate from the configured CA (mutual TLS); `sha256` is the certificate's
    /// fingerprint (hex).
    Certificate {
        /// SHA-256 of the certificate (DER), lowercase hex.
        sha256: String,
    },
}

impl Principal {
    /// The "who" written to the audit log: the username, or `token:<id>` (token names are chosen
    /// freely and may repeat or look like usernames; ids are unique).
    pub fn audit_name(&self) -> String {
        match &self.kind {
            PrincipalKind::Session => self.name.clone(),
            PrincipalKind::Token { id } => format!("token:{id}"),
            PrincipalKind::Certificate { sha256 } => {
                format!("cert:{}", sha256.get(..16).unwrap_or(sha256))
            }
        }
    }

    /// `"session"`, `"token"` or `"certificate"`, as `GET /session` reports it.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            PrincipalKind::Session => "session",
            PrincipalKind::Token { .. } => "token",
            PrincipalKind::Certificate { .. } => "certificate",
        }
    }

    /// Whether the caller's role grants `permission`.
    pub fn may(&self, permission: Permission) -> bool {
        allows(self.role, permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_name_names_tokens_by_id() {
        let token = Principal {
            name: "crestron".into(),
            role: Role::RoomControl,
            kind: PrincipalKind::Token {
                id: "a1b2c3d4".into(),
            },
        };
        assert_eq!(token.audit_name(), "token:a1b2c3d4");
        assert_eq!(token.kind_name(), "token");
        assert!(token.may(Permission::RoomControl));
        assert!(!token.may(Permission::ConfigRead));

        let user = Principal {
            name: "alice".into(),
            role: Role::Audit,
            kind: PrincipalKind::Session,
        };
        assert_eq!(user.audit_name(), "alice");
        assert_eq!(user.kind_name(), "session");
    }
}
