//! The user accounts and their file `<state>/users.json`. Every change is written to disk before
//! it takes effect in memory, so memory and disk never disagree after a failed write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::AccountsError;
use super::password::is_valid_phc;
use super::store::{self, FORMAT_VERSION, corrupt};
use super::timestamp::now_rfc3339;
use super::username::validate_username;
use roomd_model::Role;
use roomd_model::Secret;

/// What the API shows about a user (never the hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// The login name (see [`validate_username`]).
    pub username: String,
    /// What the user may do.
    pub role: Role,
    /// RFC 3339 UTC.
    pub created: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredUser {
    username: String,
    role: Role,
    created: String,
    /// argon2id PHC string.
    password_hash: Secret,
}

#[derive(Serialize, Deserialize)]
struct UsersFile {
    version: u32,
    users: Vec<StoredUser>,
}

#[derive(Debug)]
pub(super) struct UserStore {
    path: PathBuf,
    users: BTreeMap<String, StoredUser>,
}

impl UserStore {
    /// Loads `path`; a missing file means no users yet (an unclaimed device).
    pub(super) fn load(path: &Path) -> Result<Self, AccountsError> {
        let mut users = BTreeMap::new();
        if let Some(file) = store::load::<UsersFile>(path)? {
            for user in file.users {
                if validate_username(&user.username).is_err() {
                    return Err(corrupt(
                        path,
                        format!("user {:?} has an invalid name", user.username),
                    ));
                }
                if !is_valid_phc(user.password_hash.expose()) {
                    return Err(corrupt(
                        path,
                        format!(
                            "user {:?} has a password_hash that is not an argon2 PHC string",
                            user.username
                        ),
                    ));
                }
                let username = user.username.clone();
                if users.insert(username.clone(), user).is_some() {
                    return Err(corrupt(path, format!("user {username:?} appears twice")));
                }
            }
        }
        Ok(UserStore {
            path: path.to_owned(),
            users,
        })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub(super) fn list(&self) -> Vec<UserInfo> {
        self.users.values().map(info).collect()
    }

    pub(super) fn role(&self, username: &str) -> Option<Role> {
        self.users.get(username).map(|user| user.role)
    }

    /// Role and password hash of `username`, for a login.
    pub(super) fn credentials(&self, username: &str) -> Option<(Role, Secret)> {
        self.users
            .get(username)
            .map(|user| (user.role, user.password_hash.clone()))
    }

    /// Adds a user whose name and password the caller has already validated and hashed.
    pub(super) fn insert(
        &mut self,
        username: &str,
        role: Role,
        password_hash: Secret,
    ) -> Result<UserInfo, AccountsError> {
        if self.users.contains_key(username) {
            return Err(AccountsError::UserExists {
                username: username.to_owned(),
            });
        }
        let user = StoredUser {
            username: username.to_owned(),
            role,
            created: now_rfc3339(),
            password_hash,
        };
        let created = info(&user);
        let mut next = self.users.clone();
        next.insert(username.to_owned(), user);
        self.commit(next)?;
        Ok(created)
    }

    /// Deletes a user; the last admin cannot be deleted (nobody could manage the device then).
    pub(super) fn remove(&mut self, username: &str) -> Result<(), AccountsError> {
        let role = self.role(username).ok_or_else(|| not_found(username))?;
        let admins = self
            .users
            .values()
            .filter(|u| u.role == Role::Admin)
            .count();
        if role == Role::Admin && admins <= 1 {
            return Err(AccountsError::LastAdmin {
                username: username.to_owned(),
            });
        }
        let mut next = self.users.clone();
        next.remove(username);
        self.commit(next)
    }

    pub(super) fn set_password_hash(
        &mut self,
        username: &str,
        password_hash: Secret,
    ) -> Result<(), AccountsError> {
        let mut next = self.users.clone();
        let user = next.get_mut(username).ok_or_else(|| not_found(username))?;
        user.password_hash = password_hash;
        self.commit(next)
    }

    fn commit(&mut self, next: BTreeMap<String, StoredUser>) -> Result<(), AccountsError> {
        let file = UsersFile {
            version: FORMAT_VERSION,
            users: next.values().cloned().collect(),
        };
        store::save(&self.path, &file)?;
        self.users = next;
        Ok(())
    }
}

fn info(user: &StoredUser) -> UserInfo {
    UserInfo {
        username: user.username.clone(),
        role: user.role,
        created: user.created.clone(),
    }
}

fn not_found(username: &str) -> AccountsError {
    AccountsError::UserNotFound {
        username: super::error::shorten(username),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::password::hash_password;

    fn hash() -> Secret {
        hash_password("a long enough password").unwrap()
    }

    #[test]
    fn changes_persist_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let mut users = UserStore::load(&path).unwrap();
        assert!(users.is_empty());
        users.insert("alice", Role::Admin, hash()).unwrap();
        users.insert("bob", Role::User, hash()).unwrap();
        users.set_password_hash("bob", hash()).unwrap();

        let reloaded = UserStore::load(&path).unwrap();
        let names: Vec<_> = reloaded.list().into_iter().map(|u| u.username).collect();
        assert_eq!(names, ["alice", "bob"]);
        assert_eq!(reloaded.role("bob"), Some(Role::User));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"version\": 1"), "{text}");
    }

    #[test]
    fn duplicate_missing_and_last_admin_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut users = UserStore::load(&dir.path().join("users.json")).unwrap();
        users.insert("alice", Role::Admin, hash()).unwrap();
        assert!(matches!(
            users.insert("alice", Role::User, hash()),
            Err(AccountsError::UserExists { .. })
        ));
        assert!(matches!(
            users.remove("nobody"),
            Err(AccountsError::UserNotFound { .. })
        ));
        assert!(matches!(
            users.set_password_hash("nobody", hash()),
            Err(AccountsError::UserNotFound { .. })
        ));
        assert!(matches!(
            users.remove("alice"),
            Err(AccountsError::LastAdmin { .. })
        ));
        users.insert("carol", Role::Admin, hash()).unwrap();
        users.remove("alice").unwrap();
        assert!(matches!(
            users.remove("carol"),
            Err(AccountsError::LastAdmin { .. })
        ));
    }

    #[test]
    fn failed_write_leaves_memory_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone").join("users.json");
        let mut users = UserStore::load(&path).unwrap();
        assert!(matches!(
            users.insert("alice", Role::Admin, hash()),
            Err(AccountsError::Write(_))
        ));
        assert!(users.is_empty());
    }

    #[test]
    fn damaged_entries_are_reported_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let user = |name: &str, hash: &str| {
            format!(
                r#"{{"username":"{name}","role":"admin","created":"2026-01-01T00:00:00Z","password_hash":"{hash}"}}"#
            )
        };
        let good = hash();
        let cases = [
            (user("Bad Name", good.expose()), "invalid name"),
            (user("alice", "plaintext-password"), "not an argon2 PHC"),
            (
                format!(
                    "{},{}",
                    user("alice", good.expose()),
                    user("alice", good.expose())
                ),
                "appears twice",
            ),
        ];
        for (entries, expected) in cases {
            std::fs::write(&path, format!(r#"{{"version":1,"users":[{entries}]}}"#)).unwrap();
            let err = UserStore::load(&path).unwrap_err().to_string();
            assert!(err.contains("users.json"), "{err}");
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains("plaintext-password"), "{err}");
        }
    }
}
