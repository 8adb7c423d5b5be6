//! Secret settings (`SECRET_KEYS`): a new value arrives in the file or in a merge patch, is
//! taken out before the configuration is kept, saved or shown, and goes to the sealed secret
//! store; the configuration then only says [`SECRET_SET`].

use serde_json::Value;

use super::{Config, SECRET_KEYS, SECRET_SET};
use crate::Secret;

/// A secret to put into the store under `store_name`.
pub struct NewSecret {
    /// Name in the secret store (e.g. [`TURN_PASSWORD_SECRET`](super::TURN_PASSWORD_SECRET)).
    pub store_name: &'static str,
    /// The secret itself.
    pub value: Secret,
}

/// What a patch does to the secret settings.
#[derive(Default)]
pub struct PatchSecrets {
    /// New values, to be stored (the patch now says [`SECRET_SET`] for them).
    pub new: Vec<NewSecret>,
    /// Store names of the secrets the patch clears (`null` or `""`).
    pub cleared: Vec<&'static str>,
}

/// Takes new secret values out of a merge patch, leaving [`SECRET_SET`] in their place.
pub fn take_from_patch(patch: &mut Value) -> PatchSecrets {
    let mut found = PatchSecrets::default();
    for (key, store_name) in SECRET_KEYS {
        let Some((section, name)) = key.split_once('.') else {
            continue;
        };
        let Some(section) = patch.get_mut(section).and_then(Value::as_object_mut) else {
            continue;
        };
        match section.get_mut(name) {
            Some(Value::Null) => found.cleared.push(store_name),
            Some(Value::String(value)) if value.is_empty() => found.cleared.push(store_name),
            Some(Value::String(value)) if value != SECRET_SET => {
                let secret = std::mem::replace(value, SECRET_SET.to_owned());
                found.new.push(NewSecret {
                    store_name,
                    value: Secret::new(secret),
                });
            }
            _ => {}
        }
    }
    found
}

/// Takes new secret values out of a configuration read from the file.
pub fn take_from_config(config: &mut Config) -> Vec<NewSecret> {
    let mut found = Vec::new();
    for (key, store_name) in SECRET_KEYS {
        let Some(value) = field(config, key) else {
            continue;
        };
        if !value.is_empty() && value != SECRET_SET {
            let secret = std::mem::replace(value, SECRET_SET.to_owned());
            found.push(NewSecret {
                store_name,
                value: Secret::new(secret),
            });
        }
    }
    found
}

/// Store names of the secrets the configuration says are set.
pub fn set_in(config: &Config) -> Vec<&'static str> {
    let mut config = config.clone();
    SECRET_KEYS
        .iter()
        .filter(|(key, _)| field(&mut config, key).is_some_and(|v| v == SECRET_SET))
        .map(|(_, store_name)| *store_name)
        .collect()
}

fn field<'a>(config: &'a mut Config, key: &str) -> Option<&'a mut String> {
    match key {
        "meeting.turn_password" => Some(&mut config.meeting.turn_password),
        "sip.password" => Some(&mut config.sip.password),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn new_values_leave_the_patch_and_the_config() {
        let mut patch =
            json!({"meeting": {"turn_password": "hunter2"}, "audio": {"default_volume": 3}});
        let found = take_from_patch(&mut patch);
        assert_eq!(patch["meeting"]["turn_password"], SECRET_SET);
        assert_eq!(found.new.len(), 1);
        assert_eq!(found.new[0].value.expose(), "hunter2");
        assert_eq!(found.new[0].store_name, "turn-password");

        let mut patch = json!({"meeting": {"turn_password": null}});
        assert_eq!(take_from_patch(&mut patch).cleared, ["turn-password"]);
        let mut patch = json!({"meeting": {"turn_password": "set"}});
        let found = take_from_patch(&mut patch);
        assert!(found.new.is_empty() && found.cleared.is_empty());

        let mut config = Config::default();
        config.meeting.turn_password = "from the file".to_owned();
        let found = take_from_config(&mut config);
        assert_eq!(found[0].value.expose(), "from the file");
        assert_eq!(config.meeting.turn_password, SECRET_SET);
        assert_eq!(set_in(&config), ["turn-password"]);
        assert!(set_in(&Config::default()).is_empty());
    }

    #[test]
    fn a_secret_is_never_shown_or_saved() {
        let mut config = Config::default();
        config.meeting.turn_password = "hunter2".to_owned();
        assert!(!config.to_json().to_string().contains("hunter2"));
        assert!(!config.to_toml_string().unwrap().contains("hunter2"));
        assert_eq!(config.to_json()["meeting"]["turn_password"], SECRET_SET);
    }
}
