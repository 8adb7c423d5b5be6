//! The roles a user or API token can have (Cisco's role names, so integrators recognise them).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a principal may do; see `docs/permissions.md` and `roomd_api::accounts::allows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The device's owner: everything, including users, tokens and the audit log.
    Admin,
    /// Sets the room up: reads and changes the configuration, operates the room, reads the
    /// daemon's log; no accounts, tokens or audit log.
    Integrator,
    /// A person using the room: status, events and room commands.
    User,
    /// A machine driving the room (touch panel, room controller); the rights of [`Role::User`].
    RoomControl,
    /// A read-only reviewer: status, events, configuration, audit log and daemon log; changes
    /// nothing.
    Audit,
    /// A metrics scraper (Prometheus): `GET /api/v1/metrics` and nothing else, not even the
    /// status. For API tokens and client certificates; no user has it.
    Metrics,
}

impl Role {
    /// Every role, in the order docs/permissions.md lists them.
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Integrator,
        Role::User,
        Role::RoomControl,
        Role::Audit,
        Role::Metrics,
    ];

    /// The name used in the API, the configuration and the state files.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Integrator => "integrator",
            Role::User => "user",
            Role::RoomControl => "room-control",
            Role::Audit => "audit",
            Role::Metrics => "metrics",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role {given:?}; the roles are admin, integrator, user, room-control, audit, metrics"
)]
pub struct UnknownRole {
    /// The name given, cut to its first 40 characters.
    pub given: String,
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole {
                given: s.chars().take(40).collect(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_display_parse_and_serde() {
        for role in Role::ALL {
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{role}\""));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), role);
        }
        assert_eq!(Role::RoomControl.to_string(), "room-control");
        assert_eq!("metrics".parse::<Role>(), Ok(Role::Metrics));
    }

    #[test]
    fn unknown_role_is_refused_with_the_list_of_roles() {
        let err = "root".parse::<Role>().unwrap_err();
        assert!(err.to_string().contains("\"root\""), "{err}");
        assert!(err.to_string().contains("room-control"), "{err}");
        assert!("Admin".parse::<Role>().is_err());
    }
}
