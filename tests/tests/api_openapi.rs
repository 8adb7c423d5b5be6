//! The served OpenAPI document is the contract file, the contract matches docs/api.md, every
//! documented operation exists on the live server, and undocumented ones do not.

use std::collections::BTreeSet;
use std::path::Path;

use roomd_tests::{HarnessError, ROLES, Roomd, openapi_path};
use serde_json::{Value, json};

fn contract() -> Value {
    let path = openapi_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// (METHOD, path) of every operation in the contract.
fn documented_operations(contract: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in contract["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    operations
}

#[test]
fn the_served_document_is_the_contract_file() -> Result<(), HarnessError> {
    let roomd = Roomd::start("")?;
    // Public: a client must be able to learn the API before it has credentials.
    let served = roomd
        .get("/api/v1/openapi.json")
        .send()?
        .expect_status(200, "GET /api/v1/openapi.json")?;
    let content_type = served.header("content-type").unwrap_or_default().to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "openapi.json is served as {content_type:?}"
    );
    let served = served.json()?;
    assert_eq!(
        served,
        contract(),
        "the served document differs from daemon/openapi.json"
    );
    let version = served["openapi"].as_str().unwrap_or_default();
    assert!(
        version.starts_with("3.1"),
        "OpenAPI version {version:?}, expected 3.1"
    );
    Ok(())
}

/// Rows `| METHOD | /api/v1/... | roles | ... |` of the routes table in docs/api.md.
fn routes_in_api_md() -> Vec<(String, String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let method = *cells.get(1)?;
            // The audit row shows its query: `/api/v1/audit?limit=N&before=SEQ`.
            let path = cells.get(2)?.split('?').next()?;
            let roles = *cells.get(3)?;
            (["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method)
                && path.starts_with("/api/v1/"))
            .then(|| (method.to_owned(), path.to_owned(), roles.to_owned()))
        })
        .collect()
}

#[test]
fn the_contract_file_and_docs_api_md_agree() {
    let contract = contract();
    let routes = routes_in_api_md();
    assert!(
        routes.len() >= 20,
        "found only {} routes in docs/api.md",
        routes.len()
    );
    let documented = documented_operations(&contract);
    let mut problems = Vec::new();
    for (method, path, roles) in &routes {
        if !documented.contains(&(method.clone(), path.clone())) {
            problems.push(format!(
                "{method} {path} is in docs/api.md but not in openapi.json"
            ));
            continue;
        }
        let operation = &contract["paths"][path][method.to_lowercase()];
        let public = operation.get("x-roomd-public") == Some(&Value::Bool(true));
        let guest = operation.get("x-roomd-guest") == Some(&Value::Bool(true));
        if roles.starts_with("guest") != guest {
            problems.push(format!(
                "{method} {path}: docs say {roles:?}, x-roomd-guest is {guest}"
            ));
        }
        let listed: BTreeSet<&str> = operation["x-roomd-roles"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let expected: BTreeSet<&str> = if roles.starts_with("public")
            || roles.starts_with("per command")
            || roles.starts_with("guest")
        {
            BTreeSet::new()
        } else if roles == "any role" {
            ROLES.into_iter().collect()
        } else {
            roles.split(',').map(str::trim).collect()
        };
        if roles.starts_with("public") != public {
            problems.push(format!(
                "{method} {path}: docs say {roles:?}, x-roomd-public is {public}"
            ));
        }
        if !roles.starts_with("public")
            && !roles.starts_with("per command")
            && !roles.starts_with("guest")
            && listed != expected
        {
            problems.push(format!(
                "{method} {path}: docs say {expected:?}, x-roomd-roles says {listed:?}"
            ));
        }
    }
    for (method, path) in &documented {
        if !routes.iter().any(|(m, p, _)| m == method && p == path) {
            problems.push(format!(
                "{method} {path} is in openapi.json but not in docs/api.md"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The id of the meeting the room hosts, hosting one first if it hosts none.
fn hosted_meeting_id(roomd: &Roomd) -> Result<String, HarnessError> {
    let admin = roomd.admin_token()?;
    let status = |roomd: &Roomd| -> Result<Value, HarnessError> {
        roomd
            .get("/api/v1/status/meeting")
            .bearer(&admin)
            .send()?
            .expect_status(200, "GET /api/v1/status/meeting")?
            .json()
    };
    let meeting = status(roomd)?;
    if let Some(id) = meeting["id"].as_str().filter(|id| !id.is_empty()) {
        return Ok(id.to_owned());
    }
    roomd
        .request("POST", "/api/v1/commands/meeting.join")
        .bearer(&admin)
        .json(&json!({"target": {"kind": "hosted"}}))
        .send()?
        .expect_status(200, "host a meeting")?;
    Ok(status(roomd)?["id"].as_str().unwrap_or_default().to_owned())
}

/// A request that reaches `method path` with resources that exist, as the admin (or, on a
/// guest route, as a guest of a hosted meeting).
fn exercise(roomd: &Roomd, method: &str, path: &str) -> Result<u16, HarnessError> {
    let admin = roomd.admin_token()?;
    if path == "/api/v1/events" {
        return match roomd.websocket_with_token(&admin) {
            Ok(socket) => socket.close().map(|()| 101),
            Err(HarnessError::WebSocketRefused { status, .. }) => Ok(status),
            Err(other) => Err(other),
        };
    }
    let mut concrete = path
        .replace("{path}", "audio/volume")
        .replace("{name}", "audio.microphones.mute");
    if concrete.contains("{username}") {
        let username = roomd.unique_name("exists");
        roomd.create_user(&username, "existing user password", "user")?;
        concrete = concrete.replace("{username}", &username);
    }
    if concrete.contains("{id}") {
        let created = roomd.create_token(&roomd.unique_name("exists"), "user")?;
        let id = created["id"].as_str().unwrap_or_default().to_owned();
        concrete = concrete.replace("{id}", &id);
    }
    let body = match (method, path) {
        ("POST", "/api/v1/claim") => Some(
            json!({"code": "ACDEFGHJKMNP", "username": "x", "password": "long enough password"}),
        ),
        ("POST", "/api/v1/session") => {
            let (username, password) = roomd.admin_credentials()?;
            Some(json!({ "username": username, "password": password }))
        }
        ("POST", "/api/v1/users") => Some(
            json!({"username": roomd.unique_name("made"), "password": "made user password", "role": "audit"}),
        ),
        ("PUT", _) => Some(json!({"password": "changed password 123"})),
        ("POST", "/api/v1/tokens") => {
            Some(json!({"name": roomd.unique_name("made"), "role": "audit"}))
        }
        ("POST", _) | ("PATCH", _) => Some(json!({})),
        _ => None,
    };
    let mut bearer = admin;
    if concrete.contains("{meeting_id}") {
        // A hosted meeting and a guest waiting in its lobby: the guest routes exist for them.
        let meeting = hosted_meeting_id(roomd)?;
        concrete = concrete.replace("{meeting_id}", &meeting);
        if concrete.contains("{guest_id}") {
            let guest = roomd
                .request("POST", &format!("/api/v1/join/{meeting}/guests"))
                .json(&json!({"name": "Guest"}))
                .send()?
                .expect_status(201, "a guest arrives")?
                .json()?;
            concrete = concrete
                .replace("{guest_id}", guest["guest_id"].as_str().unwrap_or_default())
                .replace("{direction}", "whep");
            bearer = guest["token"].as_str().unwrap_or_default().to_owned();
        }
    }
    let body = match (method, path) {
        ("POST", "/api/v1/join/{meeting_id}/guests") => Some(json!({"name": "Guest"})),
        _ => body,
    };
    let mut request = roomd.request(method, &concrete).bearer(&bearer);
    if let Some(body) = &body {
        request = request.json(body);
    }
    let response = request.send()?;
    Ok(response.status)
}

#[test]
fn every_documented_operation_exists_and_nothing_else_does() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let mut problems = Vec::new();
    for (method, path) in documented_operations(&contract()) {
        // DELETE /api/v1/session would end the admin token the other checks use.
        let status = if (method.as_str(), path.as_str()) == ("DELETE", "/api/v1/session") {
            let token = roomd.token_for("user")?;
            roomd.request("DELETE", &path).bearer(&token).send()?.status
        } else {
            exercise(&roomd, &method, &path)?
        };
        if status == 404 || status == 405 || status >= 500 {
            problems.push(format!("{method} {path}: {status}"));
        }
    }
    let admin = roomd.admin_token()?;
    let undocumented = [
        ("GET", "/api/v1/nope", 404),
        ("GET", "/api/v2/status", 404),
        ("GET", "/api/v1/statuses", 404),
        ("GET", "/api/v1/config/audio", 404),
        ("GET", "/api/v1/commands", 404),
        ("GET", "/api/v1/tokens/abc/secret", 404),
        ("DELETE", "/api/v1/status", 405),
        ("POST", "/api/v1/status", 405),
        ("PUT", "/api/v1/health", 405),
        ("DELETE", "/api/v1/config", 405),
        ("PUT", "/api/v1/config", 405),
        ("GET", "/api/v1/commands/audio.volume.set", 405),
        ("DELETE", "/api/v1/audit", 405),
        ("PATCH", "/api/v1/users", 405),
    ];
    for (method, path, expected) in undocumented {
        let response = roomd.request(method, path).bearer(&admin).send()?;
        let code = if expected == 404 {
            "not_found"
        } else {
            "method_not_allowed"
        };
        if response.status != expected || response.error_code().as_deref() != Some(code) {
            problems.push(format!(
                "undocumented {method} {path}: expected {expected} {code}, got {}: {}",
                response.status,
                response.text()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}
