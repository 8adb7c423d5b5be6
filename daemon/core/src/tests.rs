//! The core as its users see it: commands in, status and events out.

use std::time::Duration;

use serde_json::json;
use tokio::sync::broadcast;

use super::*;
use roomd_model::config::{Config, Layout};

fn setup(dir: &tempfile::TempDir) -> CoreSetup {
    CoreSetup {
        config: Config::default(),
        config_path: dir.path().join("roomd.toml"),
        claimed: false,
        identity: IdentityStatus {
            backend: "software",
            key_sha256: "ab12".into(),
            certificate_sha256: "AB:CD".into(),
            warning: Some("software key".into()),
        },
    }
}

fn drain(rx: &mut broadcast::Receiver<Notification>) -> Vec<Notification> {
    let mut out = Vec::new();
    while let Ok(n) = rx.try_recv() {
        out.push(n);
    }
    out
}

fn event_names(notifications: &[Notification]) -> Vec<String> {
    notifications
        .iter()
        .filter_map(|n| match n {
            Notification::Event(e) => Some(e.name().to_owned()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn commands_change_status_and_publish_changes_then_events() {
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir));
    let mut rx = room.subscribe();
    assert_eq!(room.status().tree["audio"]["volume"], json!(50));

    room.execute(RoomCommand::SetVolume { level: 30 })
        .await
        .unwrap();
    assert_eq!(room.status().tree["audio"]["volume"], json!(30));
    let got = drain(&mut rx);
    assert_eq!(
        got[0],
        Notification::StatusChanged {
            path: "audio.volume".into(),
            value: json!(30)
        }
    );
    assert_eq!(event_names(&got), vec!["audio.volume.changed"]);

    // The same value again changes nothing and says nothing.
    room.execute(RoomCommand::SetVolume { level: 30 })
        .await
        .unwrap();
    assert!(drain(&mut rx).is_empty());

    room.execute(RoomCommand::SetLayout {
        layout: Layout::Grid,
    })
    .await
    .unwrap();
    room.execute(RoomCommand::SetMicrophonesMuted { muted: true })
        .await
        .unwrap();
    assert_eq!(room.status().tree["video"]["layout"], json!("grid"));
    assert_eq!(
        room.status().tree["audio"]["microphones"]["muted"],
        json!(true)
    );
    assert_eq!(
        event_names(&drain(&mut rx)),
        vec!["video.layout.changed", "audio.microphones.muted"]
    );
}

#[tokio::test]
async fn events_are_numbered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir));
    let mut rx = room.subscribe();
    room.execute(RoomCommand::ActivateStandby).await.unwrap();
    room.execute(RoomCommand::DeactivateStandby).await.unwrap();
    let seqs: Vec<u64> = drain(&mut rx)
        .into_iter()
        .filter_map(|n| match n {
            Notification::Event(e) => Some(e.seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, vec![1, 2]);
}

#[tokio::test]
async fn config_patches_are_validated_persisted_and_published() {
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir));
    let mut rx = room.subscribe();

    let err = room
        .patch_config(json!({"audio": {"default_volume": 150}}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("audio.default_volume"), "{err}");
    assert!(
        !dir.path().join("roomd.toml").exists(),
        "a refused patch writes nothing"
    );

    room.patch_config(json!({"system": {"name": "Board room"}}))
        .await
        .unwrap();
    let saved = Config::load(&dir.path().join("roomd.toml")).unwrap();
    assert_eq!(saved.system.name, "Board room");
    assert_eq!(room.config().system.name, "Board room");
    assert_eq!(room.status().tree["system"]["name"], json!("Board room"));
    let got = drain(&mut rx);
    let changed = got.iter().find_map(|n| match n {
        Notification::Event(e) => match &e.event {
            RoomEvent::ConfigChanged { keys } => Some(keys.clone()),
            _ => None,
        },
        _ => None,
    });
    assert_eq!(changed, Some(vec!["system.name".to_owned()]));
}

#[tokio::test]
async fn claiming_is_published_once() {
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir));
    let mut rx = room.subscribe();
    room.mark_claimed().await.unwrap();
    room.mark_claimed().await.unwrap();
    assert_eq!(room.status().tree["system"]["claimed"], json!(true));
    assert_eq!(event_names(&drain(&mut rx)), vec!["system.claimed"]);
}

#[tokio::test(start_paused = true)]
async fn the_room_falls_asleep_after_the_delay_and_wakes_on_use() {
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir)); // default: standby after 10 minutes
    let mut rx = room.subscribe();

    tokio::time::sleep(Duration::from_secs(9 * 60)).await;
    room.ping().await.unwrap();
    assert_eq!(room.status().tree["standby"]["state"], json!("off"));

    room.execute(RoomCommand::SetVolume { level: 40 })
        .await
        .unwrap(); // activity restarts the delay
    tokio::time::sleep(Duration::from_secs(9 * 60)).await;
    room.ping().await.unwrap();
    assert_eq!(room.status().tree["standby"]["state"], json!("off"));

    tokio::time::sleep(Duration::from_secs(61)).await;
    room.ping().await.unwrap();
    assert_eq!(room.status().tree["standby"]["state"], json!("on"));

    room.execute(RoomCommand::SetLayout {
        layout: Layout::Single,
    })
    .await
    .unwrap();
    assert_eq!(room.status().tree["standby"]["state"], json!("off"));
    let got = drain(&mut rx);
    let standby: Vec<_> = got
        .iter()
        .filter_map(|n| match n {
            Notification::Event(e) => match e.event {
                RoomEvent::StandbyActivated { reason } => Some(("standby.activated", reason)),
                RoomEvent::StandbyDeactivated { reason } => Some(("standby.deactivated", reason)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(
        standby,
        vec![
            ("standby.activated", "timer"),
            ("standby.deactivated", "activity"),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn disabled_standby_never_sleeps() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = setup(&dir);
    s.config.standby.enabled = false;
    let (room, _task) = spawn(s);
    tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
    room.ping().await.unwrap();
    assert_eq!(room.status().tree["standby"]["state"], json!("off"));
}

#[tokio::test]
async fn a_stopped_core_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (room, task) = spawn(setup(&dir));
    room.shutdown().await;
    task.await.unwrap();
    assert!(matches!(room.ping().await, Err(CoreError::Stopped)));
}

#[tokio::test]
async fn media_reports_are_published_without_waking_the_room() {
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir));
    room.execute(RoomCommand::ActivateStandby).await.unwrap();
    let mut rx = room.subscribe();
    assert_eq!(room.status().tree["system"]["hardware"], json!(null));

    let profile = roomd_hardware::Profile::builtin("simulated").unwrap();
    let hardware = roomd_hardware::probe(
        "simulated",
        &profile,
        &roomd_hardware::SystemPaths::default(),
        &|_| true,
    );
    room.report(MediaReport::Hardware(hardware)).await.unwrap();
    room.report(MediaReport::MicrophoneLevel { rms_db: -23.456 })
        .await
        .unwrap();
    room.report(MediaReport::BranchRebuilt {
        branch: "camera",
        reason: "test".into(),
        elapsed_ms: 12,
    })
    .await
    .unwrap();

    let status = room.status();
    assert_eq!(
        status.tree["system"]["hardware"]["profile"],
        json!("simulated")
    );
    assert_eq!(status.tree["system"]["hardware"]["missing"], json!(0));
    assert_eq!(status.tree["audio"]["microphones"]["level"], json!(-23.5));
    assert_eq!(status.tree["system"]["media"]["rebuilds"], json!(1));
    assert_eq!(status.tree["standby"]["state"], json!("on"));
    assert_eq!(event_names(&drain(&mut rx)), vec!["media.branch.rebuilt"]);
}

#[tokio::test]
async fn camera_and_content_commands_change_status() {
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir));
    let mut rx = room.subscribe();
    room.execute(RoomCommand::SetCameraEnabled { enabled: false })
        .await
        .unwrap();
    room.execute(RoomCommand::SetContentSharing { active: true })
        .await
        .unwrap();
    let status = room.status();
    assert_eq!(status.tree["video"]["camera"]["state"], json!("off"));
    assert_eq!(status.tree["video"]["content"]["state"], json!("active"));
    assert_eq!(
        event_names(&drain(&mut rx)),
        vec!["video.camera.off", "video.content.started"]
    );
}

#[tokio::test]
async fn camera_presets_are_saved_in_the_configuration_and_recalled() {
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir));
    let mut rx = room.subscribe();
    room.execute(RoomCommand::SetCameraPosition {
        pan: Some(-40),
        tilt: None,
        zoom: Some(200),
    })
    .await
    .unwrap();
    let position = json!({"pan": -40, "tilt": 0, "zoom": 200});
    assert_eq!(room.status().tree["video"]["camera"]["position"], position);

    room.execute(RoomCommand::SaveCameraPreset {
        name: "table".into(),
    })
    .await
    .unwrap();
    let saved = std::fs::read_to_string(dir.path().join("roomd.toml")).unwrap();
    assert!(saved.contains("name = \"table\""), "{saved}");
    assert_eq!(room.config().video.camera_presets[0].zoom, 200);

    room.execute(RoomCommand::SetCameraPosition {
        pan: Some(0),
        tilt: Some(0),
        zoom: Some(100),
    })
    .await
    .unwrap();
    room.execute(RoomCommand::RecallCameraPreset {
        name: "table".into(),
    })
    .await
    .unwrap();
    assert_eq!(room.status().tree["video"]["camera"]["position"], position);
    assert_eq!(
        event_names(&drain(&mut rx)),
        vec![
            "video.camera.moved",
            "config.changed",
            "video.camera.preset.saved",
            "video.camera.moved",
            "video.camera.moved"
        ]
    );

    let err = room
        .execute(RoomCommand::RecallCameraPreset {
            name: "whiteboard".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no camera preset named \"whiteboard\" (video.camera_presets); saved presets: table"
    );
    assert_eq!(room.status().tree["video"]["camera"]["position"], position);
}

/// The call history is personal data (participant names): its retention is applied by the
/// core's timer, not only when somebody lists or appends to the history.
#[tokio::test(start_paused = true)]
async fn the_call_history_retention_runs_on_a_timer() {
    use crate::call_history::CallRecord;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("call-history.json");
    let entry = |id: &str, days_ago: i64| {
        let ended = (time::OffsetDateTime::now_utc() - time::Duration::days(days_ago))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        CallRecord {
            id: id.into(),
            kind: "hosted".into(),
            target: json!({"kind": "hosted"}),
            started_at: ended.clone(),
            ended_at: ended,
            duration_seconds: 60,
            outcome: "ended".into(),
            error: String::new(),
            participants: vec![format!("participant of {id}")],
        }
    };
    let write = |records: &[CallRecord]| {
        std::fs::write(&file, serde_json::to_vec(records).unwrap()).unwrap();
    };
    let on_disk = || std::fs::read_to_string(&file).unwrap_or_default();
    async fn wait_until(what: &str, done: impl Fn() -> bool) {
        let started = std::time::Instant::now();
        while !done() {
            assert!(started.elapsed() < Duration::from_secs(10), "{what}");
            std::thread::sleep(Duration::from_millis(5));
            tokio::task::yield_now().await;
        }
    }

    write(&[entry("expired-while-off", 31), entry("recent", 2)]);
    let mut config = Config::default();
    config.system.state_dir = dir.path().to_owned();
    config.meeting.history_retention_days = 30;
    let (room, _task) = spawn(CoreSetup {
        config,
        ..setup(&dir)
    });
    wait_until("expired entries go when the core starts", || {
        !on_disk().contains("expired-while-off")
    })
    .await;
    assert!(on_disk().contains("recent"));

    // An entry that expires while roomd runs, and nobody opens the history.
    write(&[entry("expires-later", 31), entry("recent", 2)]);
    tokio::time::sleep(Duration::from_secs(60)).await;
    tokio::task::yield_now().await;
    assert!(
        on_disk().contains("expires-later"),
        "not before the next hourly run"
    );
    tokio::time::sleep(super::room::HISTORY_RETENTION_EVERY).await;
    wait_until("the hourly timer deletes the expired entry", || {
        !on_disk().contains("expires-later")
    })
    .await;
    assert!(on_disk().contains("participant of recent"));
    drop(room);
}

#[tokio::test]
async fn power_commands_publish_their_request_and_change_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir));
    room.execute(RoomCommand::ActivateStandby).await.unwrap();
    let mut rx = room.subscribe();
    room.execute(RoomCommand::Reboot {
        by: "user alice".into(),
    })
    .await
    .unwrap();
    room.execute(RoomCommand::PowerOff { by: String::new() })
        .await
        .unwrap();
    let got = drain(&mut rx);
    assert_eq!(
        event_names(&got),
        ["system.reboot_requested", "system.power_off_requested"]
    );
    let Notification::Event(event) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(
        serde_json::to_value(event).unwrap()["data"],
        json!({"by": "user alice"})
    );
    // Not a use of the room: it stays in standby.
    assert_eq!(room.status().tree["standby"]["state"], json!("on"));
}

#[tokio::test]
async fn host_reports_become_status_host_and_events() {
    use roomd_model::host::{HostReport, HostStatus};
    let dir = tempfile::tempdir().unwrap();
    let (room, _task) = spawn(setup(&dir));
    assert_eq!(room.status().tree["host"]["available"], json!(false));
    let mut rx = room.subscribe();
    let mut status = HostStatus::unknown();
    status.available = true;
    status.unavailable_reason.clear();
    status.hostname = "room-4-12".into();
    room.host_report(status).await.unwrap();
    assert_eq!(room.status().tree["host"]["hostname"], json!("room-4-12"));
    assert_eq!(room.status().tree["host"]["nightly_reboot_at"], json!(null));
    room.host(HostReport::Applied {
        keys: vec!["host.hostname".into()],
    })
    .await
    .unwrap();
    room.host(HostReport::ApplyFailed {
        key: "host.timezone".into(),
        reason: "denied".into(),
    })
    .await
    .unwrap();
    let got = drain(&mut rx);
    assert_eq!(event_names(&got), ["host.applied", "host.apply_failed"]);
    let data: Vec<_> = got
        .iter()
        .filter_map(|n| match n {
            Notification::Event(e) => Some(serde_json::to_value(e).unwrap()["data"].clone()),
            _ => None,
        })
        .collect();
    assert_eq!(data[0], json!({"keys": ["host.hostname"]}));
    assert_eq!(data[1], json!({"key": "host.timezone", "reason": "denied"}));
}
