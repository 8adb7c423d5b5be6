//! The machine-readable configuration schema the admin pages build their forms from.
//!
//! It is generated from docs/configuration.md, the reference a person reads, which
//! `doc_sync_tests` already keeps in step with the model: so the forms, the docs and the model
//! cannot drift apart. Defaults come from the model itself; `file_only` from [`FILE_ONLY_KEYS`].

use serde::Serialize;
use serde_json::Value;

use super::{Config, FILE_ONLY_KEYS, leaf_values};

const DOC: &str = include_str!("../../../../docs/configuration.md");

/// One configuration key, as a form needs it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SchemaKey {
    /// Dotted key, e.g. `audio.default_volume`.
    pub key: String,
    /// The section (`audio`).
    pub section: String,
    /// `string`, `integer`, `boolean`, `path`, `list of strings` or `list of tables`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The model's default, as JSON (`null` if the model has no such key).
    pub default: Value,
    /// The allowed values in words, as in the docs.
    pub allowed: String,
    /// The choices of keys that take one of a few names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
    /// Smallest allowed value of an integer key with a range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<i64>,
    /// Largest allowed value of an integer key with a range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<i64>,
    /// `at once` or `next start`.
    pub takes_effect: String,
    /// Set only in the file on the device; the API refuses to change it.
    pub file_only: bool,
    /// What the key does, in plain text from the docs.
    pub meaning: String,
}

/// Every documented key, in the order of the docs.
pub fn schema() -> Vec<SchemaKey> {
    let defaults = Config::default().to_json();
    let defaults = leaf_values(&defaults);
    DOC.lines()
        .filter(|line| line.starts_with("| `"))
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            let [key, kind, _default, allowed, effect, meaning] = cells.as_slice() else {
                return None;
            };
            let key = key.trim_matches('`').to_owned();
            let kind = kind_of(kind);
            let options = (kind == "string").then(|| options_of(allowed)).flatten();
            let (minimum, maximum) = if kind == "integer" {
                range_of(allowed)
            } else {
                (None, None)
            };
            Some(SchemaKey {
                section: key.split('.').next().unwrap_or_default().to_owned(),
                default: defaults
                    .get(key.as_str())
                    .map(|v| (*v).clone())
                    .unwrap_or(Value::Null),
                file_only: FILE_ONLY_KEYS.contains(&key.as_str()),
                key,
                kind,
                allowed: plain(allowed),
                options,
                minimum,
                maximum,
                takes_effect: (*effect).to_owned(),
                meaning: plain(meaning),
            })
        })
        .collect()
}

fn kind_of(doc: &str) -> &'static str {
    match doc {
        "integer" => "integer",
        "boolean" => "boolean",
        "string (path)" => "path",
        "list of strings" => "list of strings",
        "list of tables" => "list of tables",
        _ => "string",
    }
}

/// `` `a`, `b`, `c` ``: a fixed set of names (and nothing else in the cell).
fn options_of(allowed: &str) -> Option<Vec<String>> {
    let parts: Vec<&str> = allowed.split(", ").collect();
    let names: Vec<String> = parts
        .iter()
        .filter_map(|p| {
            let p = p.trim();
            (p.len() > 2
                && p.starts_with('`')
                && p.ends_with('`')
                && p[1..p.len() - 1]
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'-'))
            .then(|| p[1..p.len() - 1].to_owned())
        })
        .collect();
    (names.len() == parts.len() && names.len() > 1).then_some(names)
}

/// `0..=100` → (0, 100).
fn range_of(allowed: &str) -> (Option<i64>, Option<i64>) {
    let Some((low, high)) = allowed.split_once("..=") else {
        return (None, None);
    };
    (low.trim().parse().ok(), high.trim().parse().ok())
}

/// Markdown to plain text: backticks and link targets go.
fn plain(markdown: &str) -> String {
    let mut text = markdown.replace('`', "");
    while let (Some(open), Some(close)) = (text.find("]("), text.find(')')) {
        if close < open {
            break;
        }
        text.replace_range(open..=close, "]");
    }
    text.replace(['[', ']'], "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_the_model_is_in_the_schema_with_its_default() {
        let defaults = Config::default().to_json();
        let schema = schema();
        for (key, value) in leaf_values(&defaults) {
            let entry = schema
                .iter()
                .find(|k| k.key == key)
                .unwrap_or_else(|| panic!("{key} is missing from the schema"));
            assert_eq!(&entry.default, value, "default of {key}");
        }
        assert_eq!(schema.len(), leaf_values(&defaults).len());
    }

    #[test]
    fn ranges_and_choices_are_machine_readable() {
        let schema = schema();
        let find = |key: &str| schema.iter().find(|k| k.key == key).unwrap().clone();
        let volume = find("audio.default_volume");
        assert_eq!((volume.minimum, volume.maximum), (Some(0), Some(100)));
        assert_eq!(volume.kind, "integer");
        let layout = find("video.default_layout");
        assert_eq!(
            layout.options.unwrap(),
            ["speaker", "grid", "presentation", "single"]
        );
        assert_eq!(find("standby.enabled").kind, "boolean");
        assert!(find("identity.tcti").file_only);
        assert_eq!(find("api.listen").takes_effect, "next start");
        // Free text has no fixed choices.
        assert!(find("system.name").options.is_none());
    }

    /// Every number in a documented `a..=b` range reaches the schema, so a form's limits are the
    /// server's: a value just outside is refused by both (file-only keys: by the file's checks).
    #[test]
    fn documented_ranges_match_what_the_server_refuses() {
        for key in schema().into_iter().filter(|k| k.kind == "integer") {
            let (Some(min), Some(max)) = (key.minimum, key.maximum) else {
                panic!("{} has no machine-readable range", key.key);
            };
            let (section, name) = key.key.split_once('.').unwrap();
            for (value, ok) in [(min, true), (max, true), (min - 1, false), (max + 1, false)] {
                let patch = serde_json::json!({ section: { name: value } });
                // A file-only key is refused through the API whatever its value: its range is
                // checked as a signed provisioning bundle (the file's authority) changes it.
                let result = if key.file_only {
                    Config::default().apply_provisioning_patch(&patch)
                } else {
                    Config::default().apply_merge_patch(&patch)
                };
                assert_eq!(result.is_ok(), ok, "{} = {value}", key.key);
            }
        }
    }
}
