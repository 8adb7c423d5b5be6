//! Reading and writing the versioned JSON state files (`users.json`, `tokens.json`):
//! `{"version": 1, ...}`, mode 0600, replaced atomically. A damaged file is an error, never
//! silently replaced: that would throw away accounts or tokens.

use std::io::ErrorKind;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::AccountsError;
use roomd_base::fsutil::write_atomic;

/// The only format version this roomd reads and writes.
pub(super) const FORMAT_VERSION: u32 = 1;

#[derive(serde::Deserialize)]
struct VersionOnly {
    version: u32,
}

/// Loads `path` as `T`; `Ok(None)` if the file does not exist yet.
pub(super) fn load<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, AccountsError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AccountsError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    // The version first, so a file from a newer roomd is reported as such rather than as a
    // confusing missing-field error.
    let version: VersionOnly = parse(path, &bytes)?;
    if version.version != FORMAT_VERSION {
        return Err(corrupt(
            path,
            format!(
                "it has format version {}, this roomd reads version {FORMAT_VERSION}",
                version.version
            ),
        ));
    }
    parse(path, &bytes).map(Some)
}

/// Replaces `path` with `value` as pretty JSON, readable by roomd's user only.
pub(super) fn save<T: Serialize>(path: &Path, value: &T) -> Result<(), AccountsError> {
    let mut json = serde_json::to_vec_pretty(value).map_err(|e| AccountsError::Corrupt {
        path: path.to_owned(),
        detail: format!(
            "could not encode the new contents ({:?} error)",
            e.classify()
        ),
    })?;
    json.push(b'\n');
    write_atomic(path, &json, 0o600)?;
    Ok(())
}

pub(super) fn corrupt(path: &Path, detail: String) -> AccountsError {
    AccountsError::Corrupt {
        path: path.to_owned(),
        detail,
    }
}

fn parse<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, AccountsError> {
    serde_json::from_slice(bytes).map_err(|e| {
        // Only the position and category: serde's own message can quote values from the file,
        // and these files hold password and token hashes.
        let category = match e.classify() {
            serde_json::error::Category::Io => "unreadable data",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "a missing, unknown or mistyped field",
            serde_json::error::Category::Eof => "the file ends too early",
        };
        corrupt(
            path,
            format!("{category} at line {}, column {}", e.line(), e.column()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Example {
        version: u32,
        items: Vec<String>,
    }

    #[test]
    fn round_trips_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("example.json");
        assert_eq!(load::<Example>(&path).unwrap(), None);
        let value = Example {
            version: 1,
            items: vec!["a".into()],
        };
        save(&path, &value).unwrap();
        assert_eq!(load::<Example>(&path).unwrap(), Some(value));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn damage_is_reported_with_path_and_position_but_not_the_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("example.json");
        std::fs::write(&path, "{\"version\":1,\"items\":[\"$secret-hash$\", 5]}").unwrap();
        let err = load::<Example>(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("line 1"), "{err}");
        assert!(!err.contains("secret-hash"), "{err}");

        std::fs::write(&path, "{\"version\":2,\"items\":[]}").unwrap();
        let err = load::<Example>(&path).unwrap_err().to_string();
        assert!(err.contains("format version 2"), "{err}");

        std::fs::write(&path, "{\"version\":1,\"items\":[").unwrap();
        assert!(matches!(
            load::<Example>(&path),
            Err(AccountsError::Corrupt { .. })
        ));
    }
}
