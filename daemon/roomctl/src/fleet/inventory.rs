//! The inventory: one [`Room`] per room the broker holds a retained presence or status for, its
//! fields as `fleet list` shows them, and `--match` filters over those fields.

use std::fmt;
use std::str::FromStr;

use serde_json::{Value, json};

/// What the broker holds of one room: its retained presence and status, and when the room
/// published them (the MQTT 5 user property `published_at` roomd sets on both).
#[derive(Debug, Default, Clone)]
pub(crate) struct Seen {
    pub(crate) presence: String,
    pub(crate) status: Value,
    pub(crate) presence_at: Option<String>,
    pub(crate) status_at: Option<String>,
}

/// The inventory fields, in the order of the table and CSV columns.
pub(crate) const FIELDS: [&str; 7] = [
    "room",
    "name",
    "version",
    "health",
    "in_meeting",
    "online",
    "last_seen",
];

/// One room of the inventory.
#[derive(Debug, Clone)]
pub(crate) struct Room {
    pub(crate) id: String,
    pub(crate) name: String,
    /// The firmware image's version (`status.update.image_version`), or roomd's own version
    /// (`status.system.version`) where roomd does not run from a firmware image.
    pub(crate) version: String,
    pub(crate) health: &'static str,
    pub(crate) in_meeting: bool,
    pub(crate) online: bool,
    pub(crate) last_seen: Option<String>,
    pub(crate) seen: Seen,
}

impl Room {
    /// `now`: roomctl's clock, the last-seen time of a room that is online right now.
    pub(crate) fn new(id: &str, seen: Seen, now: &str) -> Room {
        let status = &seen.status;
        let online = seen.presence == "online";
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let image = text(&status["update"]["image_version"]);
        let version = if image.is_empty() {
            text(&status["system"]["version"])
        } else {
            image
        };
        let in_meeting = matches!(
            status["meeting"]["state"].as_str(),
            Some("joining" | "lobby" | "connected" | "reconnecting")
        );
        // Online: the broker holds its connection now. Offline: the later of its last presence
        // and status publications (RFC 3339 UTC strings order as times).
        let last_seen = if online {
            Some(now.to_owned())
        } else {
            seen.presence_at.clone().max(seen.status_at.clone())
        };
        Room {
            id: id.to_owned(),
            name: text(&status["system"]["name"]),
            version,
            health: health(online, status),
            in_meeting,
            online,
            last_seen,
            seen,
        }
    }

    /// A field by its name in [`FIELDS`] (and `presence`), as text; `None` for unknown names.
    pub(crate) fn field(&self, key: &str) -> Option<String> {
        Some(match key {
            "room" => self.id.clone(),
            "name" => self.name.clone(),
            "version" => self.version.clone(),
            "health" => self.health.to_owned(),
            "in_meeting" => self.in_meeting.to_string(),
            "online" => self.online.to_string(),
            "last_seen" => self.last_seen.clone().unwrap_or_default(),
            "presence" => self.seen.presence.clone(),
            _ => return None,
        })
    }

    /// The JSON of `fleet list`: the inventory fields, plus what earlier versions listed
    /// (presence, meeting, standby, media), so that scripts reading those go on working.
    pub(crate) fn to_json(&self) -> Value {
        let status = &self.seen.status;
        json!({
            "room": self.id,
            "name": self.name,
            "version": self.version,
            "health": self.health,
            "in_meeting": self.in_meeting,
            "online": self.online,
            "last_seen": self.last_seen,
            "presence": self.seen.presence,
            "meeting": status["meeting"]["state"],
            "standby": status["standby"]["state"],
            "media": status["system"]["media"]["state"],
        })
    }
}

/// `ok` when the room is online and its media engine runs (what roomd's own boot health check
/// asks, besides the core and the API answering, which a published status shows); `starting`
/// while the engine starts, `failed` when it failed, `offline`, or `unknown` without a status.
fn health(online: bool, status: &Value) -> &'static str {
    if !online {
        return "offline";
    }
    match status["system"]["media"]["state"].as_str() {
        Some("running") => "ok",
        Some("failed") => "failed",
        Some(_) => "starting",
        None => "unknown",
    }
}

/// How a `--match` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `KEY=VALUE`: equal.
    Equal,
    /// `KEY!=VALUE`: not equal.
    NotEqual,
    /// `KEY~=PATTERN`: a case-insensitive glob (`*`, `?`); without either, a substring.
    Like,
}

/// One `--match KEY=VALUE` (or `KEY!=VALUE`, `KEY~=PATTERN`).
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    key: String,
    op: Op,
    value: String,
}

/// A `--match` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FilterError {
    #[error("--match {0:?}: write KEY=VALUE, KEY!=VALUE or KEY~=PATTERN")]
    Syntax(String),
    #[error("--match {0:?}: no field {1:?}; the fields are {fields}", fields = FIELDS.join(", "))]
    UnknownField(String, String),
}

impl FromStr for Filter {
    type Err = FilterError;

    fn from_str(text: &str) -> Result<Filter, FilterError> {
        let (key, op, value) = if let Some((k, v)) = text.split_once("~=") {
            (k, Op::Like, v)
        } else if let Some((k, v)) = text.split_once("!=") {
            (k, Op::NotEqual, v)
        } else if let Some((k, v)) = text.split_once('=') {
            (k, Op::Equal, v)
        } else {
            return Err(FilterError::Syntax(text.to_owned()));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(FilterError::Syntax(text.to_owned()));
        }
        if key != "presence" && !FIELDS.contains(&key) {
            return Err(FilterError::UnknownField(text.to_owned(), key.to_owned()));
        }
        Ok(Filter {
            key: key.to_owned(),
            op,
            value: value.to_owned(),
        })
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Equal => "=",
            Op::NotEqual => "!=",
            Op::Like => "~=",
        };
        write!(f, "{}{op}{}", self.key, self.value)
    }
}

impl Filter {
    pub(crate) fn matches(&self, room: &Room) -> bool {
        let actual = room.field(&self.key).unwrap_or_default();
        match self.op {
            Op::Equal => actual == self.value,
            Op::NotEqual => actual != self.value,
            Op::Like => like(&self.value, &actual),
        }
    }
}

/// Case-insensitive glob: `*` any run of characters, `?` one; a pattern with neither matches
/// as a substring (`name~=floor 3` finds "Room 12, Floor 3").
fn like(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    let text: Vec<char> = text.to_lowercase().chars().collect();
    if !pattern.iter().any(|c| matches!(c, '*' | '?')) {
        return text
            .windows(pattern.len().max(1))
            .any(|w| w == pattern.as_slice())
            || pattern.is_empty();
    }
    // Iterative glob with one backtrack point: linear in practice, no recursion on input.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(presence: &str, status: Value) -> Room {
        let seen = Seen {
            presence: presence.into(),
            status,
            presence_at: Some("2026-12-01T10:00:00Z".into()),
            status_at: Some("2026-12-01T10:05:00Z".into()),
        };
        Room::new("room-1", seen, "2026-12-06T18:00:00Z")
    }

    #[test]
    fn fields_come_from_presence_and_status() {
        let status = json!({
            "system": {"name": "Floor 3 east", "version": "0.1.0", "media": {"state": "running"}},
            "update": {"image_version": "1.2"},
            "meeting": {"state": "connected"},
        });
        let online = room("online", status.clone());
        assert_eq!(online.version, "1.2");
        assert_eq!(online.health, "ok");
        assert!(online.in_meeting && online.online);
        assert_eq!(online.last_seen.as_deref(), Some("2026-12-06T18:00:00Z"));
        let offline = room("offline", status);
        assert_eq!(offline.health, "offline");
        assert_eq!(offline.last_seen.as_deref(), Some("2026-12-01T10:05:00Z"));
        let plain = room("online", json!({"system": {"version": "0.1.0"}}));
        assert_eq!(plain.version, "0.1.0");
        assert_eq!(plain.health, "unknown");
    }

    #[test]
    fn filters_compare_fields() {
        let r = room(
            "online",
            json!({"system": {"name": "Room 12, Floor 3", "version": "0.1.0",
                              "media": {"state": "running"}},
                   "meeting": {"state": "idle"}}),
        );
        let yes = |f: &str| f.parse::<Filter>().expect(f).matches(&r);
        assert!(yes("version=0.1.0") && !yes("version=0.2"));
        assert!(yes("online=true") && yes("in_meeting=false") && yes("health=ok"));
        assert!(yes("name~=floor 3") && yes("name~=room*3") && !yes("name~=floor 4"));
        assert!(yes("name~=*12,?floor*") && yes("room~=ROOM-?"));
        assert!(yes("version!=1.0") && !yes("version!=0.1.0"));
        assert!("nope=1".parse::<Filter>().is_err());
        assert!("version".parse::<Filter>().is_err());
        assert!("=1".parse::<Filter>().is_err());
    }

    #[test]
    fn glob_matching() {
        assert!(like("a*c", "abbbc") && like("a*c", "ac") && !like("a*c", "ab"));
        assert!(like("*", "") && like("a?c", "abc") && !like("a?c", "ac"));
        assert!(like("", "anything") && like("b", "abc") && !like("d", "abc"));
    }
}
