//! API tokens and their file `<state>/tokens.json`. A token is `rmd_` + 32 random bytes
//! (base64url); only its SHA-256 is kept, so the file is useless to a thief. Verification is a
//! hash-map lookup because it runs on every API request.
//!
//! Tokens made by pairing a touch panel expire unless used: a panel that has made no request
//! for [`PANEL_TOKEN_IDLE`] (thrown away, stolen and shelved, replaced) loses its access. A
//! working panel keeps its events socket open and re-checks its token every few seconds, so it
//! never gets near that. The last use is kept in memory and written to the file at most once a
//! day per token, so that requests do not turn into disk writes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use serde::{Deserialize, Serialize};

use super::error::{AccountsError, shorten};
use super::principal::{Principal, PrincipalKind};
use super::store::{self, FORMAT_VERSION, corrupt};
use super::timestamp::now_rfc3339;
use roomd_base::sync::lock;
use roomd_model::Role;
use roomd_model::{Secret, random_base64url, sha256_hex};

/// Every token starts with this, so leaked tokens are recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "rmd_";
/// Longer input cannot be a token; refused before hashing.
const MAX_TOKEN_LEN: usize = 128;
pub(super) const MAX_TOKEN_NAME_CHARS: usize = 64;
/// `created_by` of the tokens pairing makes; these expire unless used.
pub(super) const PAIRING_CREATOR: &str = "pairing";
/// A panel token without a request for this long is void: two weeks covers a room switched off
/// over a holiday fortnight, not a panel that disappeared.
pub(super) const PANEL_TOKEN_IDLE: Duration = Duration::from_secs(14 * 24 * 60 * 60);
/// How old the last use in the file may get before it is written again.
const LAST_USE_WRITE_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

/// What the API shows about a token (never the secret or its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Public identifier (8 hex digits), used to revoke the token and in the audit log.
    pub id: String,
    /// Chosen by its creator, 1 to 64 characters; need not be unique.
    pub name: String,
    /// What the token may do.
    pub role: Role,
    /// RFC 3339 UTC.
    pub created: String,
    /// Username of the admin who made it.
    pub created_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredToken {
    #[serde(flatten)]
    info: TokenInfo,
    /// SHA-256 of the whole secret, lowercase hex.
    sha256: Secret,
    /// RFC 3339 UTC, to the day (see [`LAST_USE_WRITE_INTERVAL`]); only for tokens that expire
    /// unless used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used: Option<String>,
}

impl StoredToken {
    fn expires_unless_used(&self) -> bool {
        self.info.created_by == PAIRING_CREATOR
    }
}

/// What [`TokenStore::verify`] found.
#[derive(Debug)]
pub(super) struct Verified {
    pub principal: Principal,
    /// The file's record of the last use is a day old: call [`TokenStore::record_use`].
    pub record_use: bool,
}

#[derive(Serialize, Deserialize)]
struct TokensFile {
    version: u32,
    tokens: Vec<StoredToken>,
}

pub(super) struct TokenStore {
    path: PathBuf,
    /// Keyed by the SHA-256 hex of the secret.
    by_hash: HashMap<String, StoredToken>,
    /// Last use of tokens that expire unless used, by token id; newer than the file's.
    last_use: Mutex<HashMap<String, OffsetDateTime>>,
    /// When the file was loaded: the last use of a token the file has none for (a file from
    /// before last uses were recorded), so such a token gets a full period from the update.
    loaded: OffsetDateTime,
}

impl std::fmt::Debug for TokenStore {
    /// Without the hashes (they are keys of the map, outside the redacting `Secret`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("path", &self.path)
            .field("tokens", &self.by_hash.len())
            .finish()
    }
}

impl TokenStore {
    pub(super) fn load(path: &Path) -> Result<Self, AccountsError> {
        let mut by_hash = HashMap::new();
        let mut ids = std::collections::HashSet::new();
        if let Some(file) = store::load::<TokensFile>(path)? {
            for token in file.tokens {
                let hash = token.sha256.expose().to_owned();
                let well_formed = hash.len() == 64
                    && hash
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                if !well_formed {
                    return Err(corrupt(
                        path,
                        format!("token {:?} has a malformed sha256", token.info.id),
                    ));
                }
                if !ids.insert(token.info.id.clone()) {
                    return Err(corrupt(
                        path,
                        format!("token id {:?} appears twice", token.info.id),
                    ));
                }
                if by_hash.insert(hash, token).is_some() {
                    return Err(corrupt(path, "two tokens have the same sha256".to_owned()));
                }
            }
        }
        Ok(TokenStore {
            path: path.to_owned(),
            by_hash,
            last_use: Mutex::new(HashMap::new()),
            loaded: OffsetDateTime::now_utc(),
        })
    }

    /// All tokens, oldest first.
    pub(super) fn list(&self) -> Vec<TokenInfo> {
        let mut tokens: Vec<TokenInfo> = self.by_hash.values().map(|t| t.info.clone()).collect();
        tokens.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
        tokens
    }

    /// Makes a token; the secret is returned here and never again.
    pub(super) fn create(
        &mut self,
        name: &str,
        role: Role,
        created_by: &str,
    ) -> Result<(TokenInfo, Secret), AccountsError> {
        validate_token_name(name)?;
        let id = loop {
            let candidate = roomd_base::random::token_hex(4);
            if !self.by_hash.values().any(|t| t.info.id == candidate) {
                break candidate;
            }
        };
        let secret = format!("{TOKEN_PREFIX}{}", random_base64url(32));
        let info = TokenInfo {
            id,
            name: name.to_owned(),
            role,
            created: now_rfc3339(),
            created_by: created_by.to_owned(),
        };
        let mut token = StoredToken {
            info: info.clone(),
            sha256: Secret::new(sha256_hex(&secret)),
            last_used: None,
        };
        if token.expires_unless_used() {
            token.last_used = Some(info.created.clone());
        }
        let mut next = self.by_hash.clone();
        next.insert(sha256_hex(&secret), token);
        self.commit(next)?;
        Ok((info, Secret::new(secret)))
    }

    pub(super) fn revoke(&mut self, id: &str) -> Result<(), AccountsError> {
        let mut next = self.by_hash.clone();
        let before = next.len();
        next.retain(|_, token| token.info.id != id);
        if next.len() == before {
            return Err(AccountsError::TokenNotFound { id: shorten(id) });
        }
        self.commit(next)
    }

    /// The principal a bearer secret stands for, if it is a current token (a panel token
    /// unused for [`PANEL_TOKEN_IDLE`] is not); counts as a use of the token.
    pub(super) fn verify(&self, secret: &str, now: OffsetDateTime) -> Option<Verified> {
        if !secret.starts_with(TOKEN_PREFIX) || secret.len() > MAX_TOKEN_LEN {
            return None;
        }
        // The lookup is by hash, so its timing says nothing useful about the secret.
        let token = self.by_hash.get(&sha256_hex(secret))?;
        let mut record_use = false;
        if token.expires_unless_used() {
            let recorded = token
                .last_used
                .as_deref()
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
                .unwrap_or(self.loaded);
            let mut last_use = lock(&self.last_use);
            let last = last_use
                .get(&token.info.id)
                .copied()
                .map_or(recorded, |t| t.max(recorded));
            if now - last >= PANEL_TOKEN_IDLE {
                return None;
            }
            last_use.insert(token.info.id.clone(), now);
            record_use = now - recorded >= LAST_USE_WRITE_INTERVAL;
        }
        Some(Verified {
            principal: Principal {
                name: token.info.name.clone(),
                role: token.info.role,
                kind: PrincipalKind::Token {
                    id: token.info.id.clone(),
                },
            },
            record_use,
        })
    }

    /// Writes the last use of token `id` that [`TokenStore::verify`] noted to the file.
    pub(super) fn record_use(&mut self, id: &str) -> Result<(), AccountsError> {
        let used = lock(&self.last_use).get(id).copied();
        let Some(used) = used else { return Ok(()) };
        let used = used.replace_nanosecond(0).unwrap_or(used);
        let mut next = self.by_hash.clone();
        for token in next.values_mut().filter(|t| t.info.id == id) {
            token.last_used = used.format(&Rfc3339).ok();
        }
        self.commit(next)
    }

    fn commit(&mut self, next: HashMap<String, StoredToken>) -> Result<(), AccountsError> {
        let mut tokens: Vec<StoredToken> = next.values().cloned().collect();
        tokens.sort_by(|a, b| (&a.info.created, &a.info.id).cmp(&(&b.info.created, &b.info.id)));
        store::save(
            &self.path,
            &TokensFile {
                version: FORMAT_VERSION,
                tokens,
            },
        )?;
        self.by_hash = next;
        Ok(())
    }
}

fn validate_token_name(name: &str) -> Result<(), AccountsError> {
    let invalid = |reason| Err(AccountsError::InvalidTokenName { reason });
    if name.trim().is_empty() {
        return invalid("it is empty");
    }
    if name.chars().count() > MAX_TOKEN_NAME_CHARS {
        return invalid("it is longer than 64 characters");
    }
    if name.chars().any(char::is_control) {
        return invalid("it contains control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[test]
    fn panel_tokens_expire_unless_used_and_others_never() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let mut tokens = TokenStore::load(&path).unwrap();
        let (panel, panel_secret) = tokens
            .create("panel Table", Role::RoomControl, PAIRING_CREATOR)
            .unwrap();
        let (_, admin_secret) = tokens.create("script", Role::Admin, "alice").unwrap();
        let day = Duration::from_secs(24 * 60 * 60);
        let start = now();
        // Used every 13 days, the panel token lives on; each use a day after the recorded one
        // asks to be written to the file.
        let mut t = start;
        for _ in 0..5 {
            t += day * 13;
            let verified = tokens
                .verify(panel_secret.expose(), t)
                .expect("still valid");
            assert!(verified.record_use);
            tokens.record_use(&panel.id).unwrap();
            let again = tokens.verify(panel_secret.expose(), t + day / 2).unwrap();
            assert!(!again.record_use, "written less than a day ago");
        }
        // The use survives a reload (it was written to the file).
        let reloaded = TokenStore::load(&path).unwrap();
        assert!(
            reloaded
                .verify(panel_secret.expose(), t + day * 13)
                .is_some()
        );
        let reloaded = TokenStore::load(&path).unwrap();
        assert!(
            reloaded
                .verify(panel_secret.expose(), t + PANEL_TOKEN_IDLE)
                .is_none()
        );
        // Unused for 14 days: void. Tokens an admin made do not expire.
        assert!(
            tokens
                .verify(panel_secret.expose(), t + day / 2 + PANEL_TOKEN_IDLE)
                .is_none()
        );
        let verified = tokens
            .verify(admin_secret.expose(), start + day * 3650)
            .unwrap();
        assert!(!verified.record_use);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("last_used").count(), 1, "{text}");
    }

    #[test]
    fn verify_revoke_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let mut tokens = TokenStore::load(&path).unwrap();
        let (info, secret) = tokens
            .create("crestron", Role::RoomControl, "alice")
            .unwrap();
        let (other, other_secret) = tokens.create("monitoring", Role::Audit, "alice").unwrap();
        assert!(secret.expose().starts_with("rmd_"));
        assert_eq!(secret.expose().len(), 4 + 43);
        assert_eq!(info.id.len(), 8);
        assert_ne!(info.id, other.id);

        let principal = tokens.verify(secret.expose(), now()).unwrap().principal;
        assert_eq!(principal.role, Role::RoomControl);
        assert_eq!(principal.name, "crestron");
        assert_eq!(
            principal.kind,
            PrincipalKind::Token {
                id: info.id.clone()
            }
        );
        assert!(tokens.verify("rmd_wrong", now()).is_none());
        assert!(
            tokens.verify(&secret.expose()[4..], now()).is_none(),
            "prefix required"
        );

        let mut reloaded = TokenStore::load(&path).unwrap();
        assert_eq!(reloaded.list(), tokens.list());
        assert!(reloaded.verify(secret.expose(), now()).is_some());
        reloaded.revoke(&info.id).unwrap();
        assert!(reloaded.verify(secret.expose(), now()).is_none());
        assert!(reloaded.verify(other_secret.expose(), now()).is_some());
        assert!(matches!(
            reloaded.revoke(&info.id),
            Err(AccountsError::TokenNotFound { .. })
        ));
        let reloaded = TokenStore::load(&path).unwrap();
        assert!(
            reloaded.verify(secret.expose(), now()).is_none(),
            "revocation persisted"
        );
        assert_eq!(reloaded.list(), [other]);
    }

    #[test]
    fn file_holds_no_secret() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let mut tokens = TokenStore::load(&path).unwrap();
        let (_, secret) = tokens.create("panel", Role::User, "alice").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(secret.expose()), "{text}");
        assert!(!text.contains(&secret.expose()[4..]), "{text}");
        assert!(text.contains(&sha256_hex(secret.expose())), "{text}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn names_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let mut tokens = TokenStore::load(&dir.path().join("tokens.json")).unwrap();
        for name in ["", "   ", "bad\nname", &"n".repeat(65)] {
            assert!(matches!(
                tokens.create(name, Role::User, "alice"),
                Err(AccountsError::InvalidTokenName { .. })
            ));
        }
        assert!(tokens.list().is_empty());
    }

    #[test]
    fn damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        std::fs::write(
            &path,
            r#"{"version":1,"tokens":[{"id":"a","name":"n","role":"user","created":"x","created_by":"y","sha256":"zz"}]}"#,
        )
        .unwrap();
        let err = TokenStore::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("tokens.json") && err.contains("malformed sha256"),
            "{err}"
        );
    }
}
