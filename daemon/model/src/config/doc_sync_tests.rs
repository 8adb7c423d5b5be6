//! Keeps docs/configuration.md and the model in step: every key documented with its real default
//! and restart behaviour, no documented key that does not exist, and a complete example that
//! parses.

use std::collections::BTreeSet;
use std::path::Path;

use super::*;

const DOC: &str = include_str!("../../../../docs/configuration.md");

/// Dotted leaf keys of a JSON or TOML-as-JSON document.
fn leaf_keys(json: &serde_json::Value) -> BTreeSet<String> {
    leaf_values(json).into_keys().collect()
}

/// Rows of the reference tables: `| `key` | type | default | allowed | takes effect | meaning |`.
fn documented_rows() -> Vec<Vec<&'static str>> {
    DOC.lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| line.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect()
}

fn example_block() -> &'static str {
    let mut blocks = DOC.split("```toml\n").skip(1);
    let block = blocks
        .next()
        .expect("docs/configuration.md has a ```toml example block");
    assert!(
        blocks.next().is_none(),
        "exactly one ```toml block, the complete example"
    );
    block.split("```").next().unwrap_or_default()
}

#[test]
fn every_key_is_documented_with_its_default_and_when_it_takes_effect() {
    let defaults = Config::default().to_json();
    let rows = documented_rows();
    for (key, value) in leaf_values(&defaults) {
        let row = rows
            .iter()
            .find(|row| row[0] == format!("`{key}`"))
            .unwrap_or_else(|| panic!("docs/configuration.md has no table row for `{key}`"));
        assert_eq!(row.len(), 6, "row of {key} has six columns: {row:?}");
        let default = serde_json::to_string(value).unwrap();
        assert_eq!(
            row[2],
            format!("`{default}`"),
            "documented default of {key}"
        );
        let expected = if takes_effect_at_next_start(&key) {
            "next start"
        } else {
            "at once"
        };
        assert_eq!(row[4], expected, "documented time of effect of {key}");
    }
}

#[test]
fn the_doc_describes_no_key_that_does_not_exist() {
    let keys = leaf_keys(&Config::default().to_json());
    for row in documented_rows() {
        let key = row[0].trim_matches('`');
        assert!(
            keys.contains(key),
            "docs/configuration.md documents unknown key `{key}`"
        );
    }
}

#[test]
fn the_example_is_valid_and_sets_every_key() {
    let example = example_block();
    let config = Config::from_toml_str(example, Path::new("docs/configuration.md"))
        .unwrap_or_else(|e| panic!("the example in docs/configuration.md is invalid: {e}"));
    assert_ne!(
        config,
        Config::default(),
        "the example shows more than the defaults"
    );
    let table: toml::Table = toml::from_str(example).unwrap();
    let set_in_example = leaf_keys(&serde_json::to_value(table).unwrap());
    assert_eq!(set_in_example, leaf_keys(&Config::default().to_json()));
}
