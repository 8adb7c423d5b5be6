//! Who a D-Bus caller is to roomd: the bus says which uid sent a call
//! (`GetConnectionUnixUser`), the system's group database says what that uid may do.

use nix::unistd::{Group, Uid, User, getgrouplist};
use roomd_model::Role;

/// Members of this group (and root) are administrators over D-Bus: every command, the
/// firmware's `update.reboot` included.
pub const ADMIN_GROUP: &str = "roomd-admin";

/// Members of this group get the room-control role: the room's commands, not the firmware's.
pub const CONTROL_GROUP: &str = "roomd-control";

/// The role of a caller running as `uid`, or `None` if it has none (then it may not call).
///
/// Read from the group database at each call, so that adding a user to a group (or removing
/// one) counts at the next call, without restarting roomd. The bus's policy admits only root and
/// these groups in the first place; this check is the second line, and the one that tells
/// room control from administration.
pub fn role_of_uid(uid: u32) -> Option<Role> {
    if uid == 0 {
        return Some(Role::Admin);
    }
    let user = User::from_uid(Uid::from_raw(uid)).ok().flatten()?;
    let name = std::ffi::CString::new(user.name).ok()?;
    let groups = getgrouplist(&name, user.gid).ok()?;
    let member = |group: &str| {
        Group::from_name(group)
            .ok()
            .flatten()
            .is_some_and(|g| groups.contains(&g.gid) || g.gid == user.gid)
    };
    if member(ADMIN_GROUP) {
        Some(Role::Admin)
    } else if member(CONTROL_GROUP) {
        Some(Role::RoomControl)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_admin() {
        assert_eq!(role_of_uid(0), Some(Role::Admin));
    }

    #[test]
    fn a_user_outside_the_groups_has_no_role() {
        // nobody (65534) is in neither group on any system roomd supports.
        assert_eq!(role_of_uid(65534), None);
        // A uid without a passwd entry has no groups to be in.
        assert_eq!(role_of_uid(4_000_000_000), None);
    }
}
