//! Which leaves of the status tree changed: subscribers get one message per changed value.

use serde_json::Value;

/// Paths (dot-separated) and new values of every leaf that differs between `old` and `new`.
/// A subtree that appears or disappears as a whole is reported as one entry.
pub(crate) fn changed_leaves(old: &Value, new: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    walk(String::new(), old, new, &mut out);
    out
}

fn walk(path: String, old: &Value, new: &Value, out: &mut Vec<(String, Value)>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, new_child) in b {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match a.get(key) {
                    Some(old_child) => walk(child_path, old_child, new_child, out),
                    None => out.push((child_path, new_child.clone())),
                }
            }
            for key in a.keys().filter(|k| !b.contains_key(*k)) {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                out.push((child_path, Value::Null));
            }
        }
        _ if old != new => out.push((path, new.clone())),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_only_changed_leaves() {
        let old = json!({"audio": {"volume": 50, "microphones": {"muted": false}}, "video": {"layout": "grid"}});
        let new = json!({"audio": {"volume": 60, "microphones": {"muted": false}}, "video": {"layout": "grid"}, "meeting": {"state": "idle"}});
        let changes = changed_leaves(&old, &new);
        assert_eq!(
            changes,
            vec![
                ("audio.volume".to_string(), json!(60)),
                ("meeting".to_string(), json!({"state": "idle"}))
            ]
        );
    }

    #[test]
    fn equal_trees_have_no_changes() {
        let v = json!({"a": {"b": [1, 2]}});
        assert!(changed_leaves(&v, &v).is_empty());
    }
}
