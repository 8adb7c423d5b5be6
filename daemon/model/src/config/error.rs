//! Errors of the configuration module, and how parser errors are turned into messages that name
//! the file, the position and the dotted key a person has to fix.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_path_to_error::Segment;

use roomd_base::fsutil::AtomicWriteError;

/// Why the configuration could not be loaded, changed or saved. The message names the file
/// and position, or the dotted key, a person has to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable).
    #[error("cannot read {path}: {source}", path = path.display())]
    Read {
        /// The configuration file, as given.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{path}:{line}:{column}: TOML syntax error: {message}", path = path.display())]
    Syntax {
        /// The configuration file, as given.
        path: PathBuf,
        /// 1-based line of the fault.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// The parser's description of the fault.
        message: String,
    },
    /// The file is TOML but a key is unknown or a value is not allowed.
    #[error("{path}:{line}:{column}: {}{message}", key_prefix(key), path = path.display())]
    Invalid {
        /// The configuration file, as given.
        path: PathBuf,
        /// 1-based line of the fault.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// Dotted key at fault (e.g. `audio.default_volume`); None when the fault is in the
        /// document as a whole.
        key: Option<String>,
        /// What is wrong, without the key; a list entry at fault is named here (`entry 2: …`).
        message: String,
    },
    /// A JSON merge patch from the API was rejected; nothing was changed.
    #[error("{}{message}", key_prefix(key))]
    Patch {
        /// Dotted key at fault; None when the patch as a whole is (e.g. not a JSON object).
        key: Option<String>,
        /// What is wrong, without the key.
        message: String,
    },
    /// The configuration could not be written as TOML (a broken model, not a user error).
    #[error("cannot encode the configuration as TOML: {message}")]
    Encode {
        /// The encoder's description of the fault.
        message: String,
    },
    /// `save` re-reads what it is about to write; a configuration built in code that roomd would
    /// refuse at the next start is never written.
    #[error("refusing to save an invalid configuration to {path}: {source}", path = path.display())]
    Unloadable {
        /// The file that was not written.
        path: PathBuf,
        /// Why the text would not load, as it would be reported at start.
        #[source]
        source: Box<ConfigError>,
    },
    /// Writing the file failed; the file on disk is the old one, whole.
    #[error("cannot save the configuration to {path}: {source}", path = path.display())]
    Write {
        /// The file that was not written.
        path: PathBuf,
        /// Which step of the atomic write failed.
        #[source]
        source: AtomicWriteError,
    },
}

impl ConfigError {
    /// The dotted key (e.g. `audio.default_volume`) the error is about, for API error bodies.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } | ConfigError::Patch { key, .. } => key.as_deref(),
            ConfigError::Unloadable { source, .. } => source.key(),
            _ => None,
        }
    }
}

fn key_prefix(key: &Option<String>) -> String {
    key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default()
}

/// Where in `source` a TOML error points, 1-based (line 1, column 1 when it has no position).
pub fn toml_error_position(source: &str, error: &toml::de::Error) -> (usize, usize) {
    error
        .span()
        .map(|span| line_and_column(source, span.start))
        .unwrap_or((1, 1))
}

/// A TOML document that could not be parsed at all.
pub(super) fn syntax_error(origin: &Path, source: &str, error: &toml::de::Error) -> ConfigError {
    let (line, column) = toml_error_position(source, error);
    ConfigError::Syntax {
        path: origin.to_owned(),
        line,
        column,
        message: error.message().to_owned(),
    }
}

/// A parsed TOML document whose contents do not fit the model.
pub(super) fn invalid_file(
    origin: &Path,
    source: &str,
    error: &serde_path_to_error::Error<toml::de::Error>,
) -> ConfigError {
    let (key, message) = key_and_message(error.path(), error.inner().message());
    let keys: Vec<&str> = map_keys(error.path()).collect();
    // The TOML deserializer attaches the span of the offending key or value; looking the key up
    // in the document is a fallback in case some error path does not carry one.
    let span = error
        .inner()
        .span()
        .or_else(|| key_span(source, &keys))
        .unwrap_or(0..0);
    let (line, column) = line_and_column(source, span.start);
    ConfigError::Invalid {
        path: origin.to_owned(),
        line,
        column,
        key,
        message,
    }
}

/// A merged JSON document from the API whose contents do not fit the model.
pub(super) fn invalid_patch(error: &serde_path_to_error::Error<serde_json::Error>) -> ConfigError {
    let (key, message) = key_and_message(error.path(), &error.inner().to_string());
    ConfigError::Patch { key, message }
}

/// The dotted configuration key of an error path, and the message. List positions are not part
/// of a key (callers want `api.listen`, not `api.listen[2]`), so they go into the message.
fn key_and_message(path: &serde_path_to_error::Path, message: &str) -> (Option<String>, String) {
    let keys: Vec<&str> = map_keys(path).collect();
    let key = (!keys.is_empty()).then(|| keys.join("."));
    let entry = path.iter().find_map(|segment| match segment {
        Segment::Seq { index } => Some(*index),
        _ => None,
    });
    let message = match entry {
        Some(index) => format!("entry {}: {message}", index + 1),
        None => message.to_owned(),
    };
    (key, message)
}

fn map_keys(path: &serde_path_to_error::Path) -> impl Iterator<Item = &str> {
    path.iter().filter_map(|segment| match segment {
        Segment::Map { key } => Some(key.as_str()),
        _ => None,
    })
}

/// Span of the deepest of `keys` found in the TOML document `source`.
pub(super) fn key_span(source: &str, keys: &[&str]) -> Option<Range<usize>> {
    let root = toml::de::DeTable::parse(source).ok()?;
    let mut table = root.get_ref();
    let mut span = None;
    for key in keys {
        let Some((name, value)) = table.iter().find(|(name, _)| name.get_ref() == key) else {
            break;
        };
        span = Some(name.span());
        match value.get_ref().as_table() {
            Some(inner) => table = inner,
            None => break,
        }
    }
    span
}

/// 1-based line and column (in characters) of byte `offset` in `source`.
pub fn line_and_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}
