//! The interface is generated from the model: these checks fail when the model grows a status
//! section, command or event that D-Bus would not show.

use std::sync::Arc;

use roomd_api::audit::{AuditLog, AuditSettings};
use roomd_core::{COMMANDS, CoreSetup, IdentityStatus, RoomEvent};
use roomd_model::config::Config;
use zbus::object_server::Interface;

use crate::interface::Room1;
use crate::service::property_name;

fn room1(dir: &tempfile::TempDir) -> Room1 {
    let (room, _task) = roomd_core::spawn(CoreSetup {
        config: Config::default(),
        config_path: dir.path().join("roomd.toml"),
        claimed: false,
        identity: IdentityStatus {
            backend: "software",
            key_sha256: "ab12".into(),
            certificate_sha256: "AB:CD".into(),
            warning: None,
        },
    });
    let audit = AuditLog::open(&dir.path().join("audit.log"), AuditSettings::default()).unwrap();
    Room1 {
        room,
        audit: Arc::new(audit),
    }
}

fn introspection(room1: &Room1) -> String {
    let mut xml = String::new();
    room1.introspect_to_writer(&mut xml, 0);
    xml
}

#[tokio::test]
async fn every_status_section_is_a_property() {
    let dir = tempfile::tempdir().unwrap();
    let room1 = room1(&dir);
    let xml = introspection(&room1);
    let tree = room1.room.status().tree.clone();
    let sections: Vec<&String> = tree.as_object().unwrap().keys().collect();
    assert!(sections.len() >= 7, "{sections:?}");
    for section in sections {
        let property = format!(
            "<property name=\"{}\" type=\"s\" access=\"read\"",
            property_name(section)
        );
        assert!(
            xml.contains(&property),
            "status section {section} is not a property of org.roomd.Room1:\n{xml}"
        );
    }
}

#[tokio::test]
async fn commands_and_events_come_from_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let room1 = room1(&dir);
    let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
    assert_eq!(room1.commands(), names);
    assert_eq!(room1.event_names(), RoomEvent::NAMES);
    let xml = introspection(&room1);
    for needle in [
        "<method name=\"Run\">",
        "<arg name=\"name\" type=\"s\" direction=\"in\"/>",
        "<arg name=\"arguments_json\" type=\"s\" direction=\"in\"/>",
        "<signal name=\"Event\">",
        "<arg name=\"seq\" type=\"t\"/>",
    ] {
        assert!(xml.contains(needle), "{needle} missing:\n{xml}");
    }
}
