//! Which role may do what. The single source of truth for authorisation; `docs/permissions.md`
//! describes the same table for people.

use roomd_model::Role;

/// A kind of access a route needs. Every route of the API maps to exactly one permission (or is
/// public); every room command needs [`Permission::RoomControl`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// `GET /status`, `GET /status/{path}`.
    StatusRead,
    /// `GET /events` (WebSocket).
    EventsRead,
    /// `GET /config`.
    ConfigRead,
    /// `PATCH /config`.
    ConfigWrite,
    /// `POST /commands/{name}`: every command operates the room.
    RoomControl,
    /// `GET/POST /users`, `DELETE /users/{username}`, `PUT /users/{username}/password`.
    UsersManage,
    /// `GET/POST /tokens`, `DELETE /tokens/{id}`.
    TokensManage,
    /// `GET /audit`.
    AuditRead,
    /// `GET /logs`: the daemon's recent log (what it did and what failed; no secrets).
    LogsRead,
    /// `GET /session`, `DELETE /session`: a principal looking at or ending its own session.
    SessionOwn,
    /// `GET /identity`: the device's certificates and key fingerprints (nothing secret).
    IdentityRead,
    /// `GET /identity/csr`: have the device key sign a certification request for enrolment.
    IdentityEnrol,
    /// `PUT /identity/certificate`: change the certificate every client of the API is shown.
    IdentityManage,
    /// `POST /identity/quote`, `POST /identity/activate`: have the TPM quote its boot
    /// measurements or answer a credential challenge (neither changes anything).
    IdentityAttest,
    /// `GET /display/snapshot`: sees what the room display shows, the room's own camera included.
    DisplayView,
    /// `GET /calls`: the call history (meeting targets and participant names).
    CallHistoryRead,
    /// `POST /update` and the command `update.reboot`: replaces the firmware the room runs.
    FirmwareUpdate,
    /// The command `system.factory_reset`: wipes accounts, configuration and data, and leaves
    /// the device unclaimed.
    FactoryReset,
    /// The commands `system.reboot` and `system.power_off`: take the whole box down.
    SystemPower,
    /// `GET /metrics`: figures for a monitoring system (Prometheus): meeting state and stream
    /// quality, media engine, process, update state, API request counts. No names, targets or
    /// secrets.
    MetricsRead,
}

impl Permission {
    /// Every permission, once each.
    pub const ALL: [Permission; 20] = [
        Permission::StatusRead,
        Permission::EventsRead,
        Permission::ConfigRead,
        Permission::ConfigWrite,
        Permission::RoomControl,
        Permission::UsersManage,
        Permission::TokensManage,
        Permission::AuditRead,
        Permission::LogsRead,
        Permission::SessionOwn,
        Permission::IdentityRead,
        Permission::IdentityEnrol,
        Permission::IdentityManage,
        Permission::IdentityAttest,
        Permission::DisplayView,
        Permission::CallHistoryRead,
        Permission::FirmwareUpdate,
        Permission::FactoryReset,
        Permission::SystemPower,
        Permission::MetricsRead,
    ];
}

/// Every role meant for people and room controllers: all but [`Role::Metrics`].
const PEOPLE: [Role; 5] = [
    Role::Admin,
    Role::Integrator,
    Role::User,
    Role::RoomControl,
    Role::Audit,
];

/// Whether `role` grants `permission`. Written as an explicit list per permission (no "admin can
/// do everything" shortcut) so that adding a permission forces a decision for every role.
pub fn allows(role: Role, permission: Permission) -> bool {
    use Role::*;
    let granted: &[Role] = match permission {
        // Every role but metrics: a scraper's credential reads figures and nothing else.
        Permission::StatusRead | Permission::EventsRead | Permission::SessionOwn => &PEOPLE,
        Permission::ConfigRead => &[Admin, Integrator, Audit],
        Permission::ConfigWrite => &[Admin, Integrator],
        Permission::RoomControl => &[Admin, Integrator, User, RoomControl],
        // Whoever may operate the room may see its display (a touch panel shows a preview);
        // audit may not: the picture is the room's own camera, not audit material.
        Permission::DisplayView => &[Admin, Integrator, User, RoomControl],
        // The touch panel lists recent calls to call back; audit reviews who met whom.
        Permission::CallHistoryRead => &PEOPLE,
        Permission::UsersManage | Permission::TokensManage => &[Admin],
        Permission::AuditRead => &[Admin, Audit],
        // Integrators set the room up and need to see why a camera or meeting fails; the log
        // holds no secrets and records no changes (that is the audit log), so it cannot hide
        // anything from them or for them.
        Permission::LogsRead => &[Admin, Integrator, Audit],
        Permission::IdentityRead => &[Admin, Integrator, Audit],
        // Integrators enrol devices into a fleet's PKI; only an admin may change what the API
        // presents to every client.
        Permission::IdentityEnrol => &[Admin, Integrator],
        Permission::IdentityManage => &[Admin],
        // Fleet managers and auditors check what the device booted.
        Permission::IdentityAttest => &[Admin, Integrator, Audit],
        // New firmware decides everything the device does, the accounts' checks included.
        Permission::FirmwareUpdate => &[Admin],
        // Erases every account and the audit trail, and lets the next person claim the device:
        // the power to hand the box over is the owner's.
        Permission::FactoryReset => &[Admin],
        // Ends every meeting and takes the room away from everyone in it until it is back.
        Permission::SystemPower => &[Admin],
        // The owner, and the scraper's own role (a token or client certificate that can read
        // metrics and nothing else, so a monitoring system's credential gives nothing away).
        Permission::MetricsRead => &[Admin, Metrics],
    };
    granted.contains(&role)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles_with(permission: Permission) -> Vec<Role> {
        Role::ALL
            .into_iter()
            .filter(|&role| allows(role, permission))
            .collect()
    }

    #[test]
    fn matches_the_table_in_docs_api_md() {
        use Role::*;
        assert_eq!(roles_with(Permission::StatusRead), PEOPLE);
        assert_eq!(roles_with(Permission::EventsRead), PEOPLE);
        assert_eq!(roles_with(Permission::SessionOwn), PEOPLE);
        assert_eq!(
            roles_with(Permission::ConfigRead),
            [Admin, Integrator, Audit]
        );
        assert_eq!(roles_with(Permission::ConfigWrite), [Admin, Integrator]);
        assert_eq!(
            roles_with(Permission::RoomControl),
            [Admin, Integrator, User, RoomControl]
        );
        assert_eq!(roles_with(Permission::UsersManage), [Admin]);
        assert_eq!(roles_with(Permission::TokensManage), [Admin]);
        assert_eq!(roles_with(Permission::AuditRead), [Admin, Audit]);
        assert_eq!(roles_with(Permission::LogsRead), [Admin, Integrator, Audit]);
        assert_eq!(
            roles_with(Permission::IdentityRead),
            [Admin, Integrator, Audit]
        );
        assert_eq!(roles_with(Permission::IdentityEnrol), [Admin, Integrator]);
        assert_eq!(roles_with(Permission::IdentityManage), [Admin]);
        assert_eq!(
            roles_with(Permission::IdentityAttest),
            [Admin, Integrator, Audit]
        );
        assert_eq!(
            roles_with(Permission::DisplayView),
            [Admin, Integrator, User, RoomControl]
        );
        assert_eq!(roles_with(Permission::CallHistoryRead), PEOPLE);
        assert_eq!(roles_with(Permission::FirmwareUpdate), [Admin]);
        assert_eq!(roles_with(Permission::FactoryReset), [Admin]);
        assert_eq!(roles_with(Permission::SystemPower), [Admin]);
        assert_eq!(roles_with(Permission::MetricsRead), [Admin, Metrics]);
    }

    /// A metrics credential handed to a monitoring system reads metrics and nothing else.
    #[test]
    fn metrics_role_reads_metrics_only() {
        for permission in Permission::ALL {
            assert_eq!(
                allows(Role::Metrics, permission),
                permission == Permission::MetricsRead,
                "{permission:?}"
            );
        }
    }

    fn doc_permission(name: &str) -> Permission {
        Permission::ALL
            .into_iter()
            .find(|p| format!("`{p:?}`") == name)
            .unwrap_or_else(|| panic!("docs/permissions.md names unknown permission {name}"))
    }

    fn doc_roles(cell: &str) -> Vec<Role> {
        if cell == "any role" {
            return Role::ALL.to_vec();
        }
        cell.split(", ").map(|r| r.parse().unwrap()).collect()
    }

    /// The page people read and the code that decides must not drift apart.
    #[test]
    fn matches_docs_permissions_md() {
        let doc = include_str!("../../../../docs/permissions.md");
        let rows = |heading: &str| -> Vec<Vec<String>> {
            let section = doc.split(heading).nth(1).expect("section exists");
            let section = section.split("\n## ").next().unwrap_or(section);
            section
                .lines()
                .filter(|line| line.starts_with('|') && !line.starts_with("|---"))
                .skip(1) // header
                .map(|line| {
                    line.trim_matches('|')
                        .split('|')
                        .map(|cell| cell.trim().to_owned())
                        .collect()
                })
                .collect()
        };

        let matrix = rows("## Permission × role");
        assert_eq!(matrix.len(), Permission::ALL.len());
        for row in &matrix {
            let permission = doc_permission(&row[0]);
            let documented: Vec<Role> = Role::ALL
                .into_iter()
                .zip(&row[1..])
                .filter(|(_, cell)| *cell == "✓")
                .map(|(role, _)| role)
                .collect();
            assert_eq!(documented, roles_with(permission), "{permission:?}");
        }

        let routes = rows("## Routes");
        let api_routes = crate::routes::ROUTES.iter().filter(|r| !r.is_page());
        assert_eq!(routes.len(), api_routes.count());
        for row in routes.iter().filter(|row| row[3].starts_with('`')) {
            let permission = doc_permission(&row[3]);
            if permission == Permission::RoomControl {
                continue; // roles are listed per command
            }
            assert_eq!(
                doc_roles(&row[2]),
                roles_with(permission),
                "{} {}",
                row[0],
                row[1]
            );
        }

        let commands = rows("## Commands");
        assert_eq!(commands.len(), roomd_core::COMMANDS.len());
        for row in &commands {
            let name = row[0].trim_matches('`');
            let needed = crate::handlers::commands::command_permission(name);
            let mut expected = roles_with(needed);
            expected.retain(|role| allows(*role, Permission::RoomControl));
            assert_eq!(doc_roles(&row[1]), expected, "{}", row[0]);
        }
    }

    #[test]
    fn audit_role_cannot_change_anything() {
        for permission in [
            Permission::ConfigWrite,
            Permission::RoomControl,
            Permission::UsersManage,
            Permission::TokensManage,
            Permission::IdentityEnrol,
            Permission::IdentityManage,
        ] {
            assert!(!allows(Role::Audit, permission), "{permission:?}");
        }
    }
}
