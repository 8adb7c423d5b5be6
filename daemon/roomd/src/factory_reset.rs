//! Factory reset at start: when `<system.state_dir>/factory-reset` exists, roomd wipes its state
//! before it opens anything, then starts as a new, unclaimed device (docs/factory-reset.md).
//!
//! What stays is what makes the device itself rather than someone's device: the device key (in
//! the TPM a persistent object roomd never evicts; with the software backend the file
//! `tls/key.pem`) and the security floor `update/floor`, which must never go down. Everything
//! else in the state directory goes: accounts and the claimed marker, tokens, pairings, the
//! secret store, the call history, the audit log, guests, an installed certificate chain, the
//! self-signed certificate (re-issued over the same key) and the update staging. The
//! configuration file is rewritten to [`Config::factory_state`].
//!
//! The marker goes last: a wipe cut short (power loss) is done again, whole, at the next start.

use std::fs;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use roomd_identity::tls::SOFTWARE_KEY_FILE;
use roomd_model::config::{Config, ConfigError};
use roomd_model::factory_reset::{MARKER_FILE, trigger_of};
use roomd_update::{FLOOR_FILE, STAGING_DIR};

/// The folder of the device identity inside the state directory.
const TLS_DIR: &str = "tls";

/// The marker is read only this far: its content only names who asked.
const MARKER_READ_LIMIT: u64 = 256;

/// Why a factory reset could not be carried out. roomd then does not start: starting with half
/// a customer's state, or with the marker left to wipe a later start, is worse than a visible
/// failure (systemd restarts roomd, which tries the reset again).
#[derive(Debug, thiserror::Error)]
pub enum FactoryResetError {
    /// A file or folder of the state directory cannot be read or removed.
    #[error("factory reset: cannot remove {path}: {source}")]
    Remove {
        /// What could not be removed (or listed).
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The configuration file cannot be rewritten to the factory state.
    #[error("factory reset: cannot rewrite the configuration: {0}")]
    Config(#[from] ConfigError),
}

/// What a factory reset did, for the log line after it.
#[derive(Debug, PartialEq)]
pub struct Done {
    /// Who or what asked for it ([`trigger_of`]).
    pub trigger: String,
    /// How many entries were removed from the state directory (files and folders, counted
    /// where they were removed, not their content).
    pub removed: usize,
}

/// Carries out a factory reset if the marker asks for one: wipes the state directory (see the
/// module's documentation), rewrites the configuration at `config_path` (when that file exists;
/// a device running on the built-in defaults has nothing to rewrite) and replaces `config` with
/// the factory configuration. Returns `None` when there is no marker. Blocks on file I/O: call
/// it before anything opens the state.
pub fn run_if_asked(
    config_path: &Path,
    config: &mut Config,
) -> Result<Option<Done>, FactoryResetError> {
    let state_dir = config.system.state_dir.clone();
    let marker = state_dir.join(MARKER_FILE);
    let Some(content) = read_marker(&marker)? else {
        return Ok(None);
    };
    let trigger = trigger_of(&content);
    let factory = config.factory_state();
    let mut removed = wipe(
        &state_dir,
        &[MARKER_FILE],
        &[TLS_DIR, STAGING_DIR],
        Some(config_path),
    )?;
    removed += wipe(&state_dir.join(TLS_DIR), &[SOFTWARE_KEY_FILE], &[], None)?;
    removed += wipe(&state_dir.join(STAGING_DIR), &[FLOOR_FILE], &[], None)?;
    if config_path.exists() {
        factory.save(config_path)?;
    }
    *config = factory;
    // The wipe reaches the disk before the marker's removal does: a power cut in between
    // leaves the marker, and the next start wipes again.
    sync_dir(&state_dir);
    remove(&marker)?;
    sync_dir(&state_dir);
    Ok(Some(Done { trigger, removed }))
}

/// The marker's first bytes, or `None` when there is none. The marker may be anything anyone
/// with access to the state directory wrote (a symbolic link, a device node): only its
/// existence counts, and its content is read only when it is a plain file.
fn read_marker(path: &Path) -> Result<Option<Vec<u8>>, FactoryResetError> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(FactoryResetError::Remove {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut content = Vec::new();
    if metadata.is_file() {
        // Unreadable content only loses the name of who asked; the reset still runs.
        if let Ok(file) = fs::File::open(path) {
            let _ = file.take(MARKER_READ_LIMIT).read_to_end(&mut content);
        }
    }
    Ok(Some(content))
}

/// Removes everything in `dir` except the entries named in `keep`, the folders named in
/// `keep_dirs` (wiped on their own by the caller) and the file `also_keep` (the configuration
/// file, should it live there). Symbolic links are removed, never followed. A missing `dir` has
/// nothing to wipe. Returns how many entries were removed.
fn wipe(
    dir: &Path,
    keep: &[&str],
    keep_dirs: &[&str],
    also_keep: Option<&Path>,
) -> Result<usize, FactoryResetError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(FactoryResetError::Remove {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|source| FactoryResetError::Remove {
            path: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        let name = entry.file_name();
        let kept_by_name = keep.iter().any(|k| name == *k);
        let kept_as_config = also_keep.is_some_and(|c| same_file(c, &path));
        let kept_as_dir =
            keep_dirs.iter().any(|d| name == *d) && entry.file_type().is_ok_and(|t| t.is_dir());
        if kept_by_name || kept_as_config || kept_as_dir {
            continue;
        }
        remove(&path)?;
        removed += 1;
    }
    Ok(removed)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Removes a file, a symbolic link (not its target) or a whole folder.
fn remove(path: &Path) -> Result<(), FactoryResetError> {
    let err = |source| FactoryResetError::Remove {
        path: path.to_owned(),
        source,
    };
    match fs::symlink_metadata(path) {
        // remove_dir_all does not follow symbolic links inside the folder.
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(err),
        Ok(_) => fs::remove_file(path).map_err(err),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(err(e)),
    }
}

/// Makes the removals in `dir` durable. A failure is not fatal: the removals were made, only
/// their order on the disk after a power cut is at stake.
fn sync_dir(dir: &Path) {
    if let Err(e) = fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!("factory reset: cannot sync {}: {e}", dir.display());
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use roomd_model::config::IdentityBackend;
    use roomd_model::factory_reset::command_marker;

    /// A state directory as a used device has it, with a configuration file beside it.
    fn used_device(root: &Path) -> (PathBuf, Config) {
        let state = root.join("state");
        fs::create_dir_all(state.join("tls")).unwrap();
        fs::create_dir_all(state.join("update")).unwrap();
        fs::create_dir_all(state.join("secrets")).unwrap();
        fs::create_dir_all(state.join("calls")).unwrap();
        for (file, content) in [
            ("tls/key.pem", "KEY"),
            ("tls/cert.pem", "CERT"),
            ("tls/chain.pem", "CHAIN"),
            ("update/floor", "2026.12\n"),
            ("update/bundle.raucb", "BUNDLE"),
            ("secrets/dek.key", "DEK"),
            ("calls/history.jsonl", "{}"),
            ("users.json", "[]"),
            ("tokens.json", "[]"),
            ("claimed", "yes"),
            ("audit.log", "{}"),
        ] {
            fs::write(state.join(file), content).unwrap();
        }
        // A link out of the state directory: removed, its target untouched.
        fs::write(root.join("outside"), "keep me").unwrap();
        symlink(root.join("outside"), state.join("link")).unwrap();
        let mut config = Config::default();
        config.system.state_dir = state.clone();
        config.system.name = "Board room".into();
        config.identity.backend = IdentityBackend::Software;
        config.audio.default_volume = 11;
        let config_path = root.join("roomd.toml");
        config.save(&config_path).unwrap();
        (config_path, config)
    }

    fn files_under(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            if path.is_dir() && !path.is_symlink() {
                found.extend(
                    files_under(&path)
                        .into_iter()
                        .map(|f| format!("{name}/{f}")),
                );
            } else {
                found.push(name);
            }
        }
        found.sort();
        found
    }

    #[test]
    fn without_a_marker_nothing_changes() {
        let root = tempfile::tempdir().unwrap();
        let (config_path, mut config) = used_device(root.path());
        let before = files_under(root.path());
        let original = config.clone();
        assert_eq!(run_if_asked(&config_path, &mut config).unwrap(), None);
        assert_eq!(files_under(root.path()), before);
        assert_eq!(config, original);
    }

    #[test]
    fn the_wipe_keeps_the_key_and_the_floor_only() {
        let root = tempfile::tempdir().unwrap();
        let (config_path, mut config) = used_device(root.path());
        let state = config.system.state_dir.clone();
        fs::write(state.join(MARKER_FILE), command_marker("user alice")).unwrap();

        let done = run_if_asked(&config_path, &mut config).unwrap().unwrap();
        assert_eq!(
            done.trigger,
            "the command system.factory_reset by user alice"
        );
        assert_eq!(files_under(&state), ["tls/key.pem", "update/floor"]);
        assert_eq!(
            fs::read_to_string(state.join("tls/key.pem")).unwrap(),
            "KEY"
        );
        assert_eq!(
            fs::read_to_string(state.join("update/floor")).unwrap(),
            "2026.12\n"
        );
        assert_eq!(
            fs::read_to_string(root.path().join("outside")).unwrap(),
            "keep me"
        );
        let saved = Config::load(&config_path).unwrap();
        assert_eq!(saved, config);
        assert_eq!(
            saved.audio.default_volume,
            Config::default().audio.default_volume
        );
        assert_eq!(saved.system.name, Config::default().system.name);
        assert_eq!(saved.system.state_dir, state);
        assert_eq!(saved.identity.backend, IdentityBackend::Software);
        // Done: the next start is an ordinary one.
        assert_eq!(run_if_asked(&config_path, &mut config).unwrap(), None);
    }

    #[test]
    fn a_configuration_inside_the_state_directory_is_rewritten_not_removed() {
        let root = tempfile::tempdir().unwrap();
        let (_, mut config) = used_device(root.path());
        let state = config.system.state_dir.clone();
        let config_path = state.join("roomd.toml");
        config.save(&config_path).unwrap();
        fs::write(state.join(MARKER_FILE), "from a USB stick").unwrap();

        let done = run_if_asked(&config_path, &mut config).unwrap().unwrap();
        assert!(done.trigger.contains("marker found at start"), "{done:?}");
        assert_eq!(
            files_under(&state),
            ["roomd.toml", "tls/key.pem", "update/floor"]
        );
        assert_eq!(
            Config::load(&config_path).unwrap().audio.default_volume,
            Config::default().audio.default_volume
        );
    }

    #[test]
    fn a_marker_that_is_not_a_file_still_counts() {
        let root = tempfile::tempdir().unwrap();
        let (config_path, mut config) = used_device(root.path());
        let state = config.system.state_dir.clone();
        fs::create_dir(state.join(MARKER_FILE)).unwrap();
        let done = run_if_asked(&config_path, &mut config).unwrap().unwrap();
        assert!(done.trigger.contains("marker found at start"), "{done:?}");
        assert!(!state.join(MARKER_FILE).exists());
        assert!(!state.join("users.json").exists());
    }
}
