//! `openapi.json` is the contract: these tests keep it identical to the route table, the
//! permission table and the command list, so documentation cannot drift from behaviour.

use std::collections::BTreeSet;

use serde_json::Value;

use super::OPENAPI_JSON;
use super::routes::{Access, ROUTES};
use crate::accounts::{Role, allows};
use roomd_core::COMMANDS;

fn spec() -> Value {
    serde_json::from_str(OPENAPI_JSON).expect("openapi.json is valid JSON")
}

/// actix's `{path:.*}` is OpenAPI's `{path}`.
fn openapi_path(actix: &str) -> String {
    actix.replace(":.*}", "}")
}

fn roles_for(access: Access) -> Option<BTreeSet<String>> {
    match access {
        Access::Public | Access::Guest => None,
        Access::Requires(p) => Some(
            Role::ALL
                .iter()
                .filter(|r| allows(**r, p))
                .map(|r| r.to_string())
                .collect(),
        ),
    }
}

#[test]
fn is_openapi_3_1() {
    assert!(spec()["openapi"].as_str().unwrap().starts_with("3.1"));
}

#[test]
fn documents_exactly_the_served_routes_with_their_roles() {
    let spec = spec();
    let mut documented = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.insert((method.to_uppercase(), path.clone()));
            let route = ROUTES
                .iter()
                .filter(|r| !r.is_page())
                .find(|r| r.method.eq_ignore_ascii_case(method) && openapi_path(r.path) == *path)
                .unwrap_or_else(|| panic!("{method} {path} is documented but not served"));
            if route.access == Access::Guest {
                assert_eq!(
                    op["x-roomd-guest"],
                    Value::Bool(true),
                    "{method} {path} is for guests"
                );
                continue;
            }
            match roles_for(route.access) {
                None => assert_eq!(
                    op["x-roomd-public"],
                    Value::Bool(true),
                    "{method} {path} is public"
                ),
                Some(roles) => {
                    let listed: BTreeSet<String> = op["x-roomd-roles"]
                        .as_array()
                        .unwrap_or_else(|| panic!("{method} {path} lacks x-roomd-roles"))
                        .iter()
                        .map(|r| r.as_str().unwrap().to_owned())
                        .collect();
                    assert_eq!(listed, roles, "roles of {method} {path}");
                }
            }
        }
    }
    let served: BTreeSet<_> = ROUTES
        .iter()
        .filter(|r| !r.is_page())
        .map(|r| (r.method.to_owned(), openapi_path(r.path)))
        .collect();
    assert_eq!(documented, served);
}

#[test]
fn documents_exactly_the_commands() {
    let spec = spec();
    let documented: BTreeSet<&str> = spec["x-roomd-commands"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let known: BTreeSet<&str> = COMMANDS.iter().map(|c| c.name).collect();
    assert_eq!(documented, known);
    // The path parameter names the same commands, so that a fuzzer reaches each of them.
    let in_path: BTreeSet<&str> = spec["paths"]["/api/v1/commands/{name}"]["post"]["parameters"][0]
        ["schema"]["enum"]
        .as_array()
        .expect("the {name} parameter of POST /api/v1/commands/{name} has an enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        in_path, known,
        "enum of {{name}} in POST /api/v1/commands/{{name}}"
    );
    for (name, command) in spec["x-roomd-commands"].as_object().unwrap() {
        let needed = crate::handlers::commands::command_permission(name);
        let command_roles: BTreeSet<String> = roles_for(Access::Requires(needed))
            .unwrap()
            .intersection(
                &roles_for(Access::Requires(crate::accounts::Permission::RoomControl)).unwrap(),
            )
            .cloned()
            .collect();
        let roles: BTreeSet<String> = command["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(roles, command_roles, "roles of command {name}");
        roomd_core::RoomCommand::parse(name, &command["example"])
            .unwrap_or_else(|e| panic!("documented example of {name} is refused: {e}"));
    }
}

/// Pages are left out of `openapi.json` because they are not API operations: they must then be
/// public GETs of the web UI's handlers, so that nothing with data hides among them.
#[test]
fn pages_are_public_gets_of_the_web_ui_only() {
    use super::routes::Handler;
    for route in ROUTES.iter().filter(|r| r.is_page()) {
        assert_eq!(route.method, "GET", "{} is a page", route.path);
        assert_eq!(route.access, Access::Public, "{} is a page", route.path);
        assert!(
            matches!(
                route.handler,
                Handler::Page | Handler::PageRoot | Handler::PageAsset
            ),
            "{} is outside /api/ but not a web UI handler",
            route.path
        );
    }
    for route in ROUTES.iter().filter(|r| !r.is_page()) {
        assert!(
            !matches!(
                route.handler,
                Handler::Page | Handler::PageRoot | Handler::PageAsset
            ),
            "{} serves the web UI inside /api/",
            route.path
        );
    }
}

/// `GET`/`PATCH /api/v1/config` answer with every section of the model; the contract's `Config`
/// refuses other properties, so a section added to the model must be added there too.
#[test]
fn documents_exactly_the_config_sections() {
    let spec = spec();
    let documented: BTreeSet<&str> = spec["components"]["schemas"]["Config"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let served = roomd_model::config::Config::default().to_json();
    let served: BTreeSet<&str> = served
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        documented, served,
        "components.schemas.Config.properties in openapi.json must list every configuration section"
    );
}
