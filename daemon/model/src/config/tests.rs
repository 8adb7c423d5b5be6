use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::error::{key_span, line_and_column};
use super::*;

const ORIGIN: &str = "/x/roomd.toml";

fn parse(source: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(source, Path::new(ORIGIN))
}

/// Parses `[section]\nfield = value` and returns the error, which must name `section.field`.
fn rejected(section: &str, field: &str, value: &str) -> ConfigError {
    let source = format!("[{section}]\n{field} = {value}\n");
    let err = match parse(&source) {
        Ok(config) => panic!("{section}.{field} = {value} was accepted: {config:?}"),
        Err(err) => err,
    };
    assert_eq!(
        err.key(),
        Some(format!("{section}.{field}").as_str()),
        "{err}"
    );
    assert!(
        matches!(err, ConfigError::Invalid { line: 2, .. }),
        "{err:?}"
    );
    err
}

fn accepted(section: &str, field: &str, value: &str) -> Config {
    let source = format!("[{section}]\n{field} = {value}\n");
    parse(&source).unwrap_or_else(|e| panic!("{section}.{field} = {value} was rejected: {e}"))
}

/// A configuration in which every key differs from its default.
fn everything_changed() -> Config {
    Config {
        system: SystemConfig {
            name: "Raum Übersee 3".to_owned(),
            hardware_profile: "board-v2".to_owned(),
            state_dir: PathBuf::from("/srv/roomd"),
        },
        api: ApiConfig {
            listen: vec![
                "0.0.0.0:443".parse().unwrap(),
                "[2001:db8::1]:8443".parse().unwrap(),
            ],
            certificate_names: vec!["room.example.org".to_owned(), "192.0.2.7".to_owned()],
            max_body_bytes: 1024,
            session_idle_minutes: 1440,
            client_ca: "/etc/roomd/fleet-ca.pem".to_owned(),
            client_role: "audit".to_owned(),
            client_fingerprints: vec!["ab".repeat(32)],
            client_crl: "/etc/roomd/fleet-ca.crl.pem".to_owned(),
        },
        audio: AudioConfig { default_volume: 0 },
        video: VideoConfig {
            default_layout: Layout::Presentation,
            selfview: SelfviewMode::Off,
            selfview_position: SelfviewPosition::UpperLeft,
            camera_presets: vec![CameraPreset {
                name: "whiteboard".to_owned(),
                pan: -100,
                tilt: 100,
                zoom: 400,
            }],
            codec: VideoCodec::Vp8,
        },
        standby: StandbyConfig {
            enabled: false,
            delay_minutes: 480,
        },
        accounts: AccountsConfig {
            lockout_threshold: 20,
            lockout_max_seconds: 86400,
        },
        logging: LoggingConfig {
            level: LogLevel::Trace,
            audit_max_file_bytes: 65536,
            audit_max_files: 100,
            audit_retention_days: 30,
            audit_noise_interval_seconds: 3600,
        },
        identity: IdentityConfig {
            backend: IdentityBackend::Software,
            tcti: "swtpm:host=127.0.0.1,port=2321".to_owned(),
        },
        meeting: MeetingConfig {
            require_encryption: false,
            stun_server: "stun://stun.example.org:3478".to_owned(),
            turn_server: "turn://user@turn.example.org:3478".to_owned(),
            turn_password: SECRET_SET.to_owned(),
            ca_file: "/etc/roomd/meeting-ca.pem".to_owned(),
            public_url: "https://room.example.org:8443".to_owned(),
            history_retention_days: 7,
            allowed_servers: vec!["janus.example.org".to_owned(), "10.20.0.0/16".to_owned()],
            lobby_timeout_seconds: 120,
            require_pin: true,
            lobby: LobbyPolicy::UnknownNames,
            known_guest_names: vec!["Dr. Weber".to_owned()],
            documents: false,
            document_max_mb: 10,
            e2ee: true,
            e2ee_ca_file: "/etc/roomd/e2ee-ca.pem".to_owned(),
            require_e2ee: true,
            e2ee_rekey_s: 600,
        },
        update: UpdateConfig {
            rauc_bus: "unix:path=/run/rauc-test/bus".to_owned(),
            os_release: "/usr/lib/os-release".to_owned(),
            max_bundle_mib: 512,
            download_timeout_s: 60,
            health_timeout_s: 30,
        },
        dbus: DbusConfig {
            bus: "unix:path=/run/roomd-test/bus".to_owned(),
        },
        host: HostConfig {
            hostname: Some("room-4-12".to_owned()),
            timezone: Some("Europe/Berlin".to_owned()),
            ntp: Some(true),
            ntp_servers: vec!["192.0.2.123".to_owned(), "ntp.example.org".to_owned()],
            nightly_reboot: Some("03:30".to_owned()),
            network: HostNetworkConfig {
                mode: Some(NetworkMode::Static),
                addresses: vec!["192.0.2.10/24".to_owned(), "2001:db8::10/64".to_owned()],
                gateways: vec!["192.0.2.1".to_owned()],
                dns: vec!["192.0.2.53".to_owned()],
            },
        },
        fleet: FleetConfig {
            broker: "mqtts://mqtt.example.org:8883".to_owned(),
            ca_file: "/etc/roomd/fleet-ca.pem".to_owned(),
            room_id: "room-4-12".to_owned(),
            role: "integrator".to_owned(),
            keepalive_s: 60,
            backoff_min_ms: 2000,
            backoff_max_ms: 120000,
            status_interval_ms: 2000,
            max_payload_bytes: 32768,
            commands_per_minute: 30,
        },
        provisioning: ProvisioningConfig {
            url: "https://provisioning.example.org/bundle.json".to_owned(),
            dns_sd: true,
            trust_key: "/usr/share/roomd/provisioning-key.pem".to_owned(),
            server_ca_file: "/etc/roomd/provisioning-ca.pem".to_owned(),
            retry_max_s: 600,
        },
        sip: SipConfig {
            registrar: "sips:sip.example.org".to_owned(),
            proxy: "sips:proxy-a.example.org:5061".to_owned(),
            fallback_proxy: "sips:[2001:db8::5]:5071".to_owned(),
            user: "room-4-12".to_owned(),
            auth_user: "room412".to_owned(),
            password: SECRET_SET.to_owned(),
            display_name: "Meeting Room 4.12".to_owned(),
            register_interval_s: 300,
            ca_file: "/etc/roomd/sip-ca.pem".to_owned(),
            auto_answer: vec!["sips:reception@sip.example.org".to_owned()],
            ring_timeout_s: 30,
            media_timeout_s: 20,
        },
    }
}

#[test]
fn sip_servers_users_and_names_are_checked() {
    assert_eq!(
        check_sip_server("sips:sip.example.org"),
        Ok(("sip.example.org".to_owned(), 5061))
    );
    assert_eq!(
        check_sip_server("sips:[::1]:5071"),
        Ok(("::1".to_owned(), 5071))
    );
    for bad in [
        "sip:plain.example.org",
        "sips:",
        "sips:host:0",
        "sips:host:x",
        "sips:user@host",
        "sips:host;transport=udp",
        "sips:::1",
    ] {
        assert!(check_sip_server(bad).is_err(), "{bad}");
    }
    assert!(check_sip_user("room-4.12_a+1").is_ok());
    for bad in ["", "a b", "a@b", "a:b", &"x".repeat(65)] {
        assert!(check_sip_user(bad).is_err(), "{bad}");
    }
    for bad in ["a \"quoted\" name", "back\\slash", "line\nbreak"] {
        let patch = json!({"sip": {"display_name": bad}});
        assert!(
            Config::default().apply_merge_patch(&patch).is_err(),
            "{bad}"
        );
    }
    // Callers answered at once: SIP addresses with a user, bounded.
    let patch =
        json!({"sip": {"auto_answer": ["sip:alice@10.0.0.2", "sips:desk@example.org;x=1"]}});
    assert!(Config::default().apply_merge_patch(&patch).is_ok());
    for bad in [
        "alice@example.org",
        "sip:example.org",
        "sip:a b@example.org",
        "sip:<a>@b",
    ] {
        let patch = json!({"sip": {"auto_answer": [bad]}});
        assert!(
            Config::default().apply_merge_patch(&patch).is_err(),
            "{bad}"
        );
    }
    let many: Vec<String> = (0..33).map(|i| format!("sip:u{i}@example.org")).collect();
    let patch = json!({"sip": {"auto_answer": many}});
    assert!(Config::default().apply_merge_patch(&patch).is_err());
    for key in ["ring_timeout_s", "media_timeout_s"] {
        for (seconds, ok) in [(4, false), (5, true), (600, true), (601, false)] {
            let patch = json!({"sip": {key: seconds}});
            assert_eq!(
                Config::default().apply_merge_patch(&patch).is_ok(),
                ok,
                "{key} {seconds}"
            );
        }
    }
    // Where the credentials go is the admin's to change, whom the room trusts the file's only.
    assert!(ADMIN_ONLY_KEYS.contains(&"sip.registrar"));
    let patch = json!({"sip": {"ca_file": "/tmp/evil-ca.pem"}});
    let err = Config::default().apply_merge_patch(&patch).unwrap_err();
    assert!(err.to_string().contains("sip.ca_file"), "{err}");
    // The password is never shown or saved.
    let patch = json!({"sip": {"password": "hunter2"}});
    let config = Config::default().apply_merge_patch(&patch).unwrap();
    assert!(!config.to_json().to_string().contains("hunter2"));
}

#[test]
fn provisioning_needs_a_trust_key_and_an_https_url() {
    let origin = Path::new("test.toml");
    let e = Config::from_toml_str(
        "[provisioning]\nurl = \"https://p.example.org/b.json\"\n",
        origin,
    )
    .unwrap_err();
    assert!(e.to_string().contains("trust_key is required"), "{e}");
    let e = Config::from_toml_str(
        "[provisioning]\nurl = \"http://p.example.org/b.json\"\ntrust_key = \"/k.pem\"\n",
        origin,
    )
    .unwrap_err();
    assert!(e.to_string().contains("https://"), "{e}");
    let ok = Config::from_toml_str(
        "[provisioning]\nurl = \"https://p.example.org/b.json\"\ntrust_key = \"/k.pem\"\n",
        origin,
    )
    .unwrap();
    assert!(ok.provisioning.is_on());
    assert!(!Config::default().provisioning.is_on());
}

#[test]
fn a_provisioning_bundle_may_set_file_only_keys_but_not_where_state_keys_and_trust_live() {
    let base = Config::default();
    let fleet =
        serde_json::json!({"fleet": {"broker": "mqtts://mqtt.example.org", "ca_file": "/x.pem"}});
    assert!(
        base.apply_merge_patch(&fleet).is_err(),
        "file-only through the API"
    );
    let after = base.apply_provisioning_patch(&fleet).unwrap();
    assert_eq!(after.fleet.broker, "mqtts://mqtt.example.org");
    for patch in [
        serde_json::json!({"system": {"state_dir": "/tmp/elsewhere"}}),
        serde_json::json!({"identity": {"backend": "software"}}),
        serde_json::json!({"provisioning": {"url": "https://a.example.org/b", "trust_key": "/k"}}),
    ] {
        let e = base.apply_provisioning_patch(&patch).unwrap_err();
        assert!(e.to_string().contains("provisioning bundle"), "{e}");
    }
    let e = base
        .apply_merge_patch(&serde_json::json!({"provisioning": {"trust_key": "/mine.pem"}}))
        .unwrap_err();
    assert!(e.to_string().contains("provisioning.trust_key"), "{e}");
}

#[test]
fn fleet_broker_and_room_id_are_checked() {
    assert_eq!(
        check_fleet_broker("mqtts://mqtt.example.org"),
        Ok(("mqtt.example.org".to_owned(), 8883))
    );
    assert_eq!(
        check_fleet_broker("mqtts://[::1]:1883"),
        Ok(("::1".to_owned(), 1883))
    );
    assert_eq!(
        check_fleet_broker("mqtts://127.0.0.1:9000"),
        Ok(("127.0.0.1".to_owned(), 9000))
    );
    for bad in [
        "mqtt://plain.example.org",
        "mqtts://",
        "mqtts://host:0",
        "mqtts://host:x",
        "mqtts://host/path",
        "mqtts://user@host",
        "mqtts://::1",
    ] {
        assert!(check_fleet_broker(bad).is_err(), "{bad}");
    }
    assert!(check_fleet_room_id("room-4.12_a").is_ok());
    for bad in ["", "a/b", "a+b", "#", "a b", &"x".repeat(65)] {
        assert!(check_fleet_room_id(bad).is_err(), "{bad}");
    }
    let patch = json!({"fleet": {"broker": "mqtts://evil.example.org"}});
    let err = Config::default().apply_merge_patch(&patch).unwrap_err();
    assert!(err.to_string().contains("fleet.broker"), "{err}");
    let patch = json!({"fleet": {"role": "admin"}});
    assert!(Config::default().apply_merge_patch(&patch).is_err());
}

#[test]
fn host_keys_are_absent_by_default_and_null_in_json() {
    let config = Config::default();
    assert_eq!(config.host, HostConfig::default());
    let json = config.to_json();
    assert_eq!(json["host"]["hostname"], json!(null));
    assert_eq!(json["host"]["network"]["mode"], json!(null));
    // The file leaves absent keys out (TOML has no null).
    let text = config.to_toml_string().unwrap();
    assert!(!text.contains("hostname"), "{text}");
    assert_eq!(parse(&text).unwrap(), config);
}

#[test]
fn host_hostname_is_rfc_1123_lowercase() {
    for good in ["room-4-12", "a", "r1.example.org", &"a".repeat(63)] {
        let ok = accepted("host", "hostname", &format!("{good:?}"));
        assert_eq!(ok.host.hostname.as_deref(), Some(good));
    }
    let long = format!("{}.{}", "a".repeat(40), "b".repeat(30));
    for bad in [
        "\"\"",
        "\"Room\"",
        "\"-room\"",
        "\"room-\"",
        "\"room_1\"",
        "\"room..a\"",
        "\"räum\"",
        &format!("{:?}", "a".repeat(64)),
        &format!("{long:?}"),
        "42",
    ] {
        rejected("host", "hostname", bad);
    }
}

#[test]
fn host_timezone_must_exist_in_the_tz_database() {
    for good in [
        "UTC",
        "Europe/Berlin",
        "America/Argentina/Buenos_Aires",
        "Etc/GMT+2",
    ] {
        let ok = accepted("host", "timezone", &format!("{good:?}"));
        assert_eq!(ok.host.timezone.as_deref(), Some(good));
    }
    for bad in [
        "\"\"",
        "\"Europe/Atlantis\"",
        "\"../etc/passwd\"",
        "\"/etc/localtime\"",
        "\"Europe//Berlin\"",
        "\"Europe/Berlin \"",
        "\"Europe\"",
    ] {
        let err = rejected("host", "timezone", bad);
        assert!(err.to_string().contains("time zone"), "{err}");
    }
}

#[test]
fn host_ntp_servers_are_addresses_or_names() {
    let ok = accepted(
        "host",
        "ntp_servers",
        r#"["192.0.2.123", "ntp.example.org", "2001:db8::1"]"#,
    );
    assert_eq!(ok.host.ntp_servers.len(), 3);
    accepted("host", "ntp", "true");
    rejected("host", "ntp", "\"yes\"");
    for bad in [
        r#"["ntp example"]"#,
        r#"["a.org", "a.org"]"#,
        r#"["1","2","3","4","5","6","7","8","9"]"#,
        r#""ntp.example.org""#,
    ] {
        rejected("host", "ntp_servers", bad);
    }
}

#[test]
fn host_nightly_reboot_is_hh_mm() {
    for (good, hm) in [("03:30", (3, 30)), ("00:00", (0, 0)), ("23:59", (23, 59))] {
        let ok = accepted("host", "nightly_reboot", &format!("{good:?}"));
        assert_eq!(ok.host.nightly_reboot.as_deref(), Some(good));
        assert_eq!(parse_time_of_day(good), Ok(hm));
    }
    for bad in [
        "\"3:30\"",
        "\"24:00\"",
        "\"03:60\"",
        "\"03:30:00\"",
        "\"\"",
        "\"+3:30\"",
        "330",
    ] {
        rejected("host", "nightly_reboot", bad);
    }
}

/// Parses `[host.network]` and returns the error, which must name the key.
fn network_rejected(body: &str, key: &str) -> ConfigError {
    let err = parse(&format!("[host.network]\n{body}\n"))
        .expect_err(&format!("[host.network] {body} was accepted"));
    assert!(
        err.key().is_some_and(|k| k.starts_with("host.network")),
        "{err}"
    );
    assert!(err.to_string().contains(key), "{err} does not name {key}");
    err
}

#[test]
fn host_network_modes_and_their_keys() {
    let dhcp = parse("[host.network]\nmode = \"dhcp\"\ndns = [\"192.0.2.53\"]\n").unwrap();
    assert_eq!(dhcp.host.network.mode, Some(NetworkMode::Dhcp));
    let fixed = parse(
        "[host.network]\nmode = \"static\"\naddresses = [\"192.0.2.10/24\", \"2001:db8::10/64\"]\n\
         gateways = [\"192.0.2.1\", \"2001:db8::1\"]\n",
    )
    .unwrap();
    assert_eq!(fixed.host.network.addresses.len(), 2);
    network_rejected("mode = \"static\"", "host.network.addresses");
    network_rejected(
        "mode = \"dhcp\"\naddresses = [\"192.0.2.10/24\"]",
        "host.network.addresses",
    );
    network_rejected(
        "mode = \"dhcp\"\ngateways = [\"192.0.2.1\"]",
        "host.network.gateways",
    );
    network_rejected("dns = [\"192.0.2.53\"]", "host.network.mode");
    network_rejected("mode = \"manual\"", "dhcp");
    network_rejected(
        "mode = \"static\"\naddresses = [\"192.0.2.10\"]",
        "host.network.addresses",
    );
    network_rejected(
        "mode = \"static\"\naddresses = [\"192.0.2.10/33\"]",
        "host.network.addresses",
    );
    network_rejected(
        "mode = \"static\"\naddresses = [\"127.0.0.1/8\"]",
        "host.network.addresses",
    );
    network_rejected(
        "mode = \"static\"\naddresses = [\"2001:db8::1/0\"]",
        "host.network.addresses",
    );
    network_rejected(
        "mode = \"static\"\naddresses = [\"192.0.2.10/24\"]\ngateways = [\"gw\"]",
        "host.network.gateways",
    );
    network_rejected(
        "mode = \"dhcp\"\ndns = [\"1.1.1.1\", \"1.0.0.1\", \"8.8.8.8\", \"8.8.4.4\", \"9.9.9.9\"]",
        "host.network.dns",
    );
    network_rejected("mode = \"dhcp\"\nwifi = true", "wifi");
}

#[test]
fn host_settings_through_a_patch_name_their_key() {
    let base = Config::default();
    let err = base
        .apply_merge_patch(&json!({"host": {"hostname": "Bad Name"}}))
        .unwrap_err();
    assert_eq!(err.key(), Some("host.hostname"), "{err}");
    let err = base
        .apply_merge_patch(&json!({"host": {"network": {"mode": "static"}}}))
        .unwrap_err();
    assert!(err.to_string().contains("host.network.addresses"), "{err}");
    let set = base
        .apply_merge_patch(&json!({"host": {"hostname": "room-1", "nightly_reboot": "04:00"}}))
        .unwrap();
    assert_eq!(set.host.hostname.as_deref(), Some("room-1"));
    // null removes a key again: the system is left as it is.
    let unset = set
        .apply_merge_patch(&json!({"host": {"hostname": null}}))
        .unwrap();
    assert_eq!(unset.host.hostname, None);
    assert_eq!(unset.host.nightly_reboot.as_deref(), Some("04:00"));
    assert_eq!(
        base.changed_keys(&set),
        ["host.hostname", "host.nightly_reboot"]
    );
}

#[test]
fn dbus_bus_is_system_none_or_an_address() {
    for value in [
        "system",
        "none",
        "unix:path=/tmp/bus",
        "unix:abstract=roomd",
    ] {
        let ok = accepted("dbus", "bus", &format!("{value:?}"));
        assert_eq!(ok.dbus.bus, value);
    }
    for value in [
        "\"session\"",
        "\"unix:path=\"",
        "\"tcp:host=10.0.0.1,port=1\"",
        "\"\"",
    ] {
        let message = parse(&format!("[dbus]\nbus = {value}\n"))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("dbus.bus") && message.contains("D-Bus address"),
            "{value}: {message}"
        );
    }
}

#[test]
fn update_settings_are_checked_naming_the_key() {
    let ok = accepted("update", "rauc_bus", "\"unix:path=/tmp/bus\"");
    assert_eq!(ok.update.rauc_bus, "unix:path=/tmp/bus");
    for (field, value, expect) in [
        ("rauc_bus", "\"session\"", "D-Bus address"),
        ("rauc_bus", "\"unix:path=\"", "D-Bus address"),
        ("os_release", "\"etc/os-release\"", "not an absolute path"),
        ("max_bundle_mib", "0", "out of range"),
        ("max_bundle_mib", "16385", "out of range"),
        ("download_timeout_s", "5", "out of range"),
        ("health_timeout_s", "3601", "out of range"),
    ] {
        let err = parse(&format!("[update]\n{field} = {value}\n")).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&format!("update.{field}")) && message.contains(expect),
            "{field} = {value}: {message}"
        );
    }
}

#[test]
fn allowed_servers_entries_are_checked_naming_the_entry() {
    let ok = parse("[meeting]\nallowed_servers = [\"janus.example.org\", \"*.example.net\", \"10.0.0.0/8\", \"::1\"]\n")
        .expect("valid patterns");
    assert_eq!(ok.meeting.allowed_servers.len(), 4);
    assert!(
        Config::default().meeting.allowed_servers.is_empty(),
        "deny by default"
    );
    let err = parse("[meeting]\nallowed_servers = [\"https://janus.example.org\"]\n").unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("allowed_servers") && message.contains("https://janus.example.org"),
        "{message}"
    );
}

#[test]
fn meeting_servers_are_checked_without_echoing_passwords() {
    // The password has its own, sealed, key: in the URL it would be saved and shown.
    let err = parse("[meeting]\nturn_server = \"turn://user:hunter2@turn.example.org:3478\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("meeting.turn_password") && !err.contains("hunter2"),
        "{err}"
    );
    let err = parse("[meeting]\nturn_server = \"turn://turn.example.org:3478\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("user name"), "{err}");
    let err = parse("[meeting]\nturn_server = \"http://u:hunter2@x:1\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("scheme") && !err.contains("hunter2"), "{err}");
    let err = parse("[meeting]\nstun_server = \"stun://stun.example.org\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("port"), "{err}");
    let err = parse("[meeting]\npublic_url = \"https://room.example.org/path\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("without a path"), "{err}");
    let err = parse("[meeting]\nhistory_retention_days = 0\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("out of range"), "{err}");
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = Config::default();
    assert_eq!(c.system.name, "roomd");
    assert_eq!(c.system.hardware_profile, "simulated");
    assert_eq!(c.system.state_dir, PathBuf::from("/var/lib/roomd"));
    assert_eq!(
        c.api.listen,
        vec!["127.0.0.1:8443".parse::<SocketAddr>().unwrap()]
    );
    assert!(c.api.certificate_names.is_empty());
    assert_eq!(c.api.max_body_bytes, 65536);
    assert_eq!(c.api.session_idle_minutes, 30);
    assert_eq!(c.audio.default_volume, 50);
    assert_eq!(c.video.default_layout, Layout::Speaker);
    assert_eq!(c.video.selfview, SelfviewMode::On);
    assert_eq!(c.video.selfview_position, SelfviewPosition::LowerRight);
    assert!(c.standby.enabled);
    assert_eq!(c.standby.delay_minutes, 10);
    assert_eq!(c.accounts.lockout_threshold, 5);
    assert_eq!(c.accounts.lockout_max_seconds, 900);
    assert_eq!(c.logging.level, LogLevel::Info);
}

#[test]
fn empty_and_partial_files_fill_in_defaults() {
    assert_eq!(parse("").unwrap(), Config::default());
    assert_eq!(parse("# nothing set\n\n").unwrap(), Config::default());
    let partial = parse("[audio]\ndefault_volume = 70\n").unwrap();
    assert_eq!(partial.audio.default_volume, 70);
    assert_eq!(
        Config {
            audio: AudioConfig { default_volume: 50 },
            ..partial
        },
        Config::default()
    );
}

#[test]
fn out_of_range_value_names_file_line_column_and_key() {
    let err = parse("# room\n[audio]\ndefault_volume = 150\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "/x/roomd.toml:3:18: audio.default_volume: 150 is out of range 0..=100"
    );
    assert_eq!(err.key(), Some("audio.default_volume"));
}

#[test]
fn unknown_top_level_key_is_rejected_with_its_position() {
    let err = parse("[system]\nname = \"a\"\n\n[sytem]\nname = \"b\"\n").unwrap_err();
    match &err {
        ConfigError::Invalid {
            path,
            line,
            column,
            key,
            message,
        } => {
            assert_eq!(path, Path::new(ORIGIN));
            assert_eq!((*line, *column), (4, 2));
            assert_eq!(key.as_deref(), Some("sytem"));
            assert!(message.contains("unknown field `sytem`"), "{message}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    let err = parse("logging.level = \"info\"\nverbose = true\n").unwrap_err();
    assert_eq!(err.key(), Some("verbose"));
    assert!(
        err.to_string().starts_with("/x/roomd.toml:2:1: verbose: "),
        "{err}"
    );
}

#[test]
fn unknown_nested_key_is_rejected_with_its_position() {
    let err = parse("[audio]\n  volum = 1\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "/x/roomd.toml:2:3: audio.volum: unknown field `volum`, expected `default_volume`"
    );
    // Dotted keys outside a table header are located the same way.
    let err = parse("audio.default_volume = 1\nvideo.layout = \"grid\"\n").unwrap_err();
    assert_eq!(err.key(), Some("video.layout"));
    assert!(
        err.to_string()
            .starts_with("/x/roomd.toml:2:7: video.layout: unknown field `layout`"),
        "{err}"
    );
}

#[test]
fn toml_syntax_errors_carry_line_and_column() {
    let err = parse("[audio]\ndefault_volume = = 3\n").unwrap_err();
    match &err {
        ConfigError::Syntax { line, column, .. } => assert_eq!((*line, *column), (2, 18)),
        other => panic!("expected Syntax, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("/x/roomd.toml:2:18: TOML syntax error: "),
        "{err}"
    );
    assert_eq!(err.key(), None);

    let err = parse("[audio]\ndefault_volume = 1\ndefault_volume = 2\n").unwrap_err();
    assert!(
        matches!(err, ConfigError::Syntax { line: 3, .. }),
        "{err:?}"
    );
    let err = parse("[audio\n").unwrap_err();
    assert!(
        matches!(err, ConfigError::Syntax { line: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn integer_ranges_are_enforced_at_both_ends() {
    let cases: [(&str, &str, i64, i64); 6] = [
        ("audio", "default_volume", 0, 100),
        ("api", "max_body_bytes", 1024, 16_777_216),
        ("api", "session_idle_minutes", 1, 1440),
        ("standby", "delay_minutes", 1, 480),
        ("accounts", "lockout_threshold", 3, 20),
        ("accounts", "lockout_max_seconds", 1, 86400),
    ];
    for (section, field, min, max) in cases {
        let leaf = |c: &Config| c.to_json()[section][field].as_i64();
        assert_eq!(leaf(&accepted(section, field, &min.to_string())), Some(min));
        assert_eq!(leaf(&accepted(section, field, &max.to_string())), Some(max));
        for bad in [min - 1, max + 1, i64::MIN, i64::MAX] {
            let err = rejected(section, field, &bad.to_string());
            assert!(
                err.to_string()
                    .ends_with(&format!("{bad} is out of range {min}..={max}")),
                "{err}"
            );
        }
        let err = rejected(section, field, "\"10\"");
        assert!(err.to_string().contains("expected an integer"), "{err}");
        rejected(section, field, "1.5");
    }
}

#[test]
fn enums_accept_exactly_their_kebab_case_names() {
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "video",
            "default_layout",
            &["speaker", "grid", "presentation", "single"],
        ),
        ("video", "selfview", &["on", "off"]),
        (
            "video",
            "selfview_position",
            &["upper-left", "upper-right", "lower-left", "lower-right"],
        ),
        (
            "logging",
            "level",
            &["error", "warn", "info", "debug", "trace"],
        ),
    ];
    for (section, field, names) in cases {
        for name in names {
            let config = accepted(section, field, &format!("\"{name}\""));
            assert_eq!(config.to_json()[section][field], json!(name));
        }
        let err = rejected(section, field, "\"Nonsense\"");
        assert!(
            err.to_string().contains("unknown variant `Nonsense`"),
            "{err}"
        );
        let err = rejected(section, field, "1");
        assert!(err.to_string().contains("expected a string"), "{err}");
        let patch = json!({ section: { field: 1 } });
        let err = Config::default().apply_merge_patch(&patch).unwrap_err();
        assert!(err.to_string().contains("expected a string"), "{err}");
    }
    assert_eq!(
        accepted("video", "selfview_position", "\"upper-right\"")
            .video
            .selfview_position,
        SelfviewPosition::UpperRight
    );
    assert_eq!(
        accepted("logging", "level", "\"warn\"").logging.level,
        LogLevel::Warn
    );
    assert_eq!(LogLevel::Debug.as_str(), "debug");
}

#[test]
fn standby_enabled_must_be_a_boolean() {
    assert!(!accepted("standby", "enabled", "false").standby.enabled);
    rejected("standby", "enabled", "\"yes\"");
}

#[test]
fn room_name_rules() {
    assert_eq!(
        accepted("system", "name", "\"Raum 4\"").system.name,
        "Raum 4"
    );
    let sixty_four_umlauts = format!("\"{}\"", "ä".repeat(64));
    accepted("system", "name", &sixty_four_umlauts);
    for bad in [
        "\"\"".to_owned(),
        "\"   \"".to_owned(),
        format!("\"{}\"", "a".repeat(65)),
        "\"Raum\\u0007 4\"".to_owned(),
        "\"Raum\\n4\"".to_owned(),
    ] {
        rejected("system", "name", &bad);
    }
}

#[test]
fn hardware_profile_rules() {
    for good in ["simulated", "0", "board-v2", &"a".repeat(32)] {
        accepted("system", "hardware_profile", &format!("\"{good}\""));
    }
    for bad in [
        "",
        "-board",
        "Board",
        "board_v2",
        "board.v2",
        "../etc",
        &"a".repeat(33),
    ] {
        let err = rejected("system", "hardware_profile", &format!("\"{bad}\""));
        assert!(
            err.to_string().contains("is not a hardware profile name"),
            "{err}"
        );
    }
}

#[test]
fn identity_defaults_to_the_tpm_and_software_must_be_named() {
    let c = Config::default();
    assert_eq!(c.identity.backend, IdentityBackend::Tpm);
    assert_eq!(c.identity.tcti, "device:/dev/tpmrm0");
    let software = accepted("identity", "backend", "\"software\"");
    assert_eq!(software.identity.backend, IdentityBackend::Software);
    for bad in ["\"soft\"", "\"\"", "true"] {
        rejected("identity", "backend", bad);
    }
}

#[test]
fn client_certificate_settings() {
    let c = Config::default();
    assert_eq!(c.api.client_ca, "");
    assert_eq!(c.api.client_role, "integrator");
    accepted("api", "client_ca", "\"/etc/roomd/fleet-ca.pem\"");
    accepted("api", "client_ca", "\"\"");
    rejected("api", "client_ca", "\"fleet-ca.pem\"");
    for role in [
        "admin",
        "integrator",
        "user",
        "room-control",
        "audit",
        "metrics",
    ] {
        accepted("api", "client_role", &format!("\"{role}\""));
    }
    let err = rejected("api", "client_role", "\"fleet\"");
    assert!(err.to_string().contains("is not a role"), "{err}");
}

#[test]
fn tcti_rules() {
    for good in [
        "device:/dev/tpmrm0",
        "device",
        "swtpm:host=127.0.0.1,port=2321",
        "tabrmd:bus_type=system",
    ] {
        let c = accepted("identity", "tcti", &format!("\"{good}\""));
        assert_eq!(c.identity.tcti, good);
    }
    let too_long = format!("device:/{}", "a".repeat(256));
    for bad in [
        "",
        "/dev/tpmrm0",
        "tpm:/dev/tpm0",
        "device:/dev/tpm rm0",
        too_long.as_str(),
    ] {
        let err = rejected("identity", "tcti", &format!("\"{bad}\""));
        assert!(
            err.to_string().contains("TCTI") || err.to_string().contains("characters"),
            "{err}"
        );
    }
}

#[test]
fn state_dir_must_be_absolute() {
    let config = accepted("system", "state_dir", "\"/srv/roomd\"");
    assert_eq!(config.system.state_dir, PathBuf::from("/srv/roomd"));
    for bad in ["\"\"", "\"var/lib/roomd\"", "\"./roomd\""] {
        let err = rejected("system", "state_dir", bad);
        assert!(err.to_string().contains("is not an absolute path"), "{err}");
    }
}

#[test]
fn listen_address_rules() {
    let config = accepted("api", "listen", "[\"[::1]:8443\", \"0.0.0.0:443\"]");
    assert_eq!(
        config.api.listen,
        vec![
            "[::1]:8443".parse::<SocketAddr>().unwrap(),
            "0.0.0.0:443".parse::<SocketAddr>().unwrap()
        ]
    );
    let eight: Vec<String> = (0..8)
        .map(|i| format!("\"127.0.0.1:{}\"", 8000 + i))
        .collect();
    accepted("api", "listen", &format!("[{}]", eight.join(", ")));
    // Different families may share a port: which of them clash depends on socket options.
    accepted("api", "listen", "[\"0.0.0.0:8443\", \"[::]:8443\"]");
    accepted("api", "listen", "[\"0.0.0.0:8443\", \"127.0.0.1:9000\"]");

    let err = rejected("api", "listen", "[]");
    assert!(err.to_string().contains("at least one address"), "{err}");
    let nine: Vec<String> = (0..9)
        .map(|i| format!("\"127.0.0.1:{}\"", 8000 + i))
        .collect();
    let err = rejected("api", "listen", &format!("[{}]", nine.join(", ")));
    assert!(err.to_string().contains("at most 8 addresses"), "{err}");
    let err = rejected("api", "listen", "[\"localhost:8443\"]");
    assert!(
        err.to_string()
            .contains("\"localhost:8443\" is not a socket address"),
        "{err}"
    );
    rejected("api", "listen", "[\"127.0.0.1\"]");
    rejected("api", "listen", "[\"::1:8443\"]");
    let err = rejected("api", "listen", "[\"127.0.0.1:8443\", \"127.0.0.1:8443\"]");
    assert!(
        err.to_string().ends_with("127.0.0.1:8443 is listed twice"),
        "{err}"
    );
    let err = rejected("api", "listen", "[\"127.0.0.1:8443\", \"0.0.0.0:8443\"]");
    assert!(err.to_string().contains("cannot both be bound"), "{err}");
    rejected("api", "listen", "\"127.0.0.1:8443\"");
    // A wrongly typed entry names the key and, in the message, which entry.
    let err = rejected("api", "listen", "[\"127.0.0.1:8443\", 8444]");
    assert!(
        err.to_string()
            .contains("api.listen: entry 2: invalid type"),
        "{err}"
    );
}

#[test]
fn certificate_name_rules() {
    let label63 = "a".repeat(63);
    let longest = format!("{label63}.{label63}.{label63}.{}", "b".repeat(61));
    assert_eq!(longest.len(), 253);
    let good = [
        "room.example.org",
        "localhost",
        "xn--rum-4qa.example",
        "192.0.2.1",
        "2001:db8::1",
        label63.as_str(),
        longest.as_str(),
    ];
    let list: Vec<String> = good.iter().map(|n| format!("\"{n}\"")).collect();
    let config = accepted(
        "api",
        "certificate_names",
        &format!("[{}]", list.join(", ")),
    );
    assert_eq!(config.api.certificate_names, good);

    let sixteen: Vec<String> = (0..16).map(|i| format!("\"host{i}.example\"")).collect();
    accepted(
        "api",
        "certificate_names",
        &format!("[{}]", sixteen.join(", ")),
    );
    let seventeen: Vec<String> = (0..17).map(|i| format!("\"host{i}.example\"")).collect();
    let err = rejected(
        "api",
        "certificate_names",
        &format!("[{}]", seventeen.join(", ")),
    );
    assert!(err.to_string().contains("at most 16 names"), "{err}");

    let too_long = format!("{longest}a");
    let label64 = "a".repeat(64);
    for bad in [
        "",
        "room_1.example",
        "room.example.org/",
        "-room.example",
        "room-.example",
        "room..example",
        ".example",
        "*.example.org",
        "räum.example",
        too_long.as_str(),
        label64.as_str(),
    ] {
        let err = rejected("api", "certificate_names", &format!("[\"{bad}\"]"));
        assert!(
            err.to_string()
                .contains("is neither an IP address nor a DNS name"),
            "{err}"
        );
    }
}

#[test]
fn merge_patch_changes_only_the_named_keys() {
    let before = Config::default();
    let after = before
        .apply_merge_patch(&json!({
            "audio": {"default_volume": 70},
            "video": {"default_layout": "grid"},
            "api": {"listen": ["0.0.0.0:8443"]}
        }))
        .unwrap();
    assert_eq!(after.audio.default_volume, 70);
    assert_eq!(after.video.default_layout, Layout::Grid);
    assert_eq!(
        after.api.listen,
        vec!["0.0.0.0:8443".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(
        before.changed_keys(&after),
        ["api.listen", "audio.default_volume", "video.default_layout"]
    );
    assert_eq!(before.apply_merge_patch(&json!({})).unwrap(), before);
}

#[test]
fn merge_patch_null_resets_keys_and_sections_to_defaults() {
    let changed = everything_changed();
    let reset_one = changed
        .apply_merge_patch(&json!({"audio": {"default_volume": null}}))
        .unwrap();
    assert_eq!(reset_one.audio.default_volume, 50);
    assert_eq!(changed.changed_keys(&reset_one), ["audio.default_volume"]);

    let reset_section = changed.apply_merge_patch(&json!({"video": null})).unwrap();
    assert_eq!(reset_section.video, VideoConfig::default());
    assert_eq!(reset_section.system, changed.system);

    // Everything the API may change, reset; the file-only keys keep their values.
    let all_sections = json!({"system": {"name": null, "hardware_profile": null},
        "audio": null, "video": null,
        "standby": null, "accounts": null, "logging": null, "host": null,
        "update": {"max_bundle_mib": null, "download_timeout_s": null, "health_timeout_s": null},
        "meeting": {"stun_server": null, "turn_server": null, "turn_password": null,
                    "public_url": null,
                    "history_retention_days": null, "lobby_timeout_seconds": null,
                    "documents": null, "document_max_mb": null, "require_pin": null,
                    "lobby": null, "known_guest_names": null},
        "api": {"listen": null, "certificate_names": null, "max_body_bytes": null,
                "session_idle_minutes": null},
        "fleet": {"keepalive_s": null, "backoff_min_ms": null, "backoff_max_ms": null,
                  "status_interval_ms": null, "max_payload_bytes": null,
                  "commands_per_minute": null},
        "sip": {"registrar": null, "proxy": null, "fallback_proxy": null, "user": null,
                "auth_user": null, "password": null, "display_name": null,
                "register_interval_s": null, "auto_answer": null, "ring_timeout_s": null,
                "media_timeout_s": null}});
    let mut expected = Config::default();
    expected.system.state_dir = changed.system.state_dir.clone();
    expected.api.client_fingerprints = changed.api.client_fingerprints.clone();
    expected.api.client_crl = changed.api.client_crl.clone();
    expected.api.client_ca = changed.api.client_ca.clone();
    expected.api.client_role = changed.api.client_role.clone();
    expected.identity = changed.identity.clone();
    expected.meeting.require_encryption = changed.meeting.require_encryption;
    expected.meeting.ca_file = changed.meeting.ca_file.clone();
    expected.meeting.allowed_servers = changed.meeting.allowed_servers.clone();
    expected.meeting.e2ee = changed.meeting.e2ee;
    expected.meeting.e2ee_ca_file = changed.meeting.e2ee_ca_file.clone();
    expected.meeting.require_e2ee = changed.meeting.require_e2ee;
    expected.meeting.e2ee_rekey_s = changed.meeting.e2ee_rekey_s;
    expected.update.rauc_bus = changed.update.rauc_bus.clone();
    expected.update.os_release = changed.update.os_release.clone();
    expected.dbus = changed.dbus.clone();
    expected.fleet.broker = changed.fleet.broker.clone();
    expected.fleet.ca_file = changed.fleet.ca_file.clone();
    expected.fleet.room_id = changed.fleet.room_id.clone();
    expected.fleet.role = changed.fleet.role.clone();
    expected.sip.ca_file = changed.sip.ca_file.clone();
    expected.provisioning = changed.provisioning.clone();
    assert_eq!(changed.apply_merge_patch(&all_sections).unwrap(), expected);
}

#[test]
fn keys_that_decide_trust_cannot_be_changed_through_the_api() {
    let config = Config::default();
    for (patch, key) in [
        (
            json!({"identity": {"backend": "software"}}),
            "identity.backend",
        ),
        (
            json!({"identity": {"tcti": "swtpm:host=10.0.0.1,port=2321"}}),
            "identity.tcti",
        ),
        (
            json!({"api": {"client_ca": "/etc/ssl/certs/ca-certificates.crt"}}),
            "api.client_ca",
        ),
        (json!({"api": {"client_role": "admin"}}), "api.client_role"),
        (
            json!({"system": {"state_dir": "/tmp/x"}}),
            "system.state_dir",
        ),
        (
            json!({"api": {"client_fingerprints": ["ab".repeat(32)]}}),
            "api.client_fingerprints",
        ),
        (
            json!({"api": {"client_crl": "/tmp/crl.pem"}}),
            "api.client_crl",
        ),
    ] {
        let err = config.apply_merge_patch(&patch).unwrap_err();
        assert_eq!(err.key(), Some(key), "{err}");
        assert!(err.to_string().contains("configuration file"), "{err}");
    }
    // Setting them to the value they already have is no change, and other keys still change.
    let same = json!({"identity": {"backend": "tpm"}, "audio": {"default_volume": 20}});
    assert_eq!(
        config
            .apply_merge_patch(&same)
            .unwrap()
            .audio
            .default_volume,
        20
    );
}

#[test]
fn merge_patch_with_an_invalid_value_names_the_key() {
    let err = Config::default()
        .apply_merge_patch(&json!({"audio": {"default_volume": 150}}))
        .unwrap_err();
    assert!(matches!(err, ConfigError::Patch { .. }), "{err:?}");
    assert_eq!(err.key(), Some("audio.default_volume"));
    assert_eq!(
        err.to_string(),
        "audio.default_volume: 150 is out of range 0..=100"
    );

    let cases = [
        (json!({"video": {"selfview": "maybe"}}), "video.selfview"),
        (json!({"system": {"name": ""}}), "system.name"),
        (json!({"api": {"listen": ["nowhere"]}}), "api.listen"),
        (json!({"api": {"listen": [1]}}), "api.listen"),
        (
            json!({"audio": {"default_volume": -1}}),
            "audio.default_volume",
        ),
        (
            json!({"audio": {"default_volume": 18446744073709551615u64}}),
            "audio.default_volume",
        ),
        (
            json!({"audio": {"default_volume": 50.0}}),
            "audio.default_volume",
        ),
        (json!({"standby": {"enabled": "true"}}), "standby.enabled"),
        (json!({"audio": 5}), "audio"),
    ];
    for (patch, key) in cases {
        let err = Config::default().apply_merge_patch(&patch).unwrap_err();
        assert_eq!(err.key(), Some(key), "{patch}: {err}");
        assert!(err.to_string().starts_with(&format!("{key}: ")), "{err}");
    }
}

#[test]
fn merge_patch_with_unknown_keys_is_rejected() {
    let err = Config::default()
        .apply_merge_patch(&json!({"audio": {"volum": 1}}))
        .unwrap_err();
    assert_eq!(err.key(), Some("audio.volum"));
    assert!(err.to_string().contains("unknown field `volum`"), "{err}");
    let err = Config::default()
        .apply_merge_patch(&json!({"network": {"dhcp": true}}))
        .unwrap_err();
    assert_eq!(err.key(), Some("network"));
}

#[test]
fn merge_patch_must_be_an_object() {
    for patch in [
        json!(null),
        json!([]),
        json!("audio"),
        json!(5),
        json!(true),
    ] {
        let err = Config::default().apply_merge_patch(&patch).unwrap_err();
        assert!(
            matches!(err, ConfigError::Patch { key: None, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("must be a JSON object"), "{err}");
    }
}

#[test]
fn toml_round_trip_preserves_every_value() {
    for config in [Config::default(), everything_changed()] {
        let text = config.to_toml_string().unwrap();
        assert!(text.starts_with("# roomd configuration."), "{text}");
        assert_eq!(parse(&text).unwrap(), config, "{text}");
    }
}

#[test]
fn json_round_trip_preserves_every_value() {
    let config = everything_changed();
    let json = config.to_json();
    assert_eq!(
        json["api"]["listen"],
        json!(["0.0.0.0:443", "[2001:db8::1]:8443"])
    );
    assert_eq!(json["system"]["state_dir"], json!("/srv/roomd"));
    // The file-only keys cannot come through a patch; start from a config that has them.
    let mut base = Config::default();
    base.system.state_dir = config.system.state_dir.clone();
    base.api.client_fingerprints = config.api.client_fingerprints.clone();
    base.api.client_crl = config.api.client_crl.clone();
    base.api.client_ca = config.api.client_ca.clone();
    base.api.client_role = config.api.client_role.clone();
    base.identity = config.identity.clone();
    base.meeting.require_encryption = config.meeting.require_encryption;
    base.meeting.ca_file = config.meeting.ca_file.clone();
    base.meeting.allowed_servers = config.meeting.allowed_servers.clone();
    base.meeting.e2ee = config.meeting.e2ee;
    base.meeting.e2ee_ca_file = config.meeting.e2ee_ca_file.clone();
    base.meeting.require_e2ee = config.meeting.require_e2ee;
    base.meeting.e2ee_rekey_s = config.meeting.e2ee_rekey_s;
    base.update.rauc_bus = config.update.rauc_bus.clone();
    base.update.os_release = config.update.os_release.clone();
    base.dbus = config.dbus.clone();
    base.fleet.broker = config.fleet.broker.clone();
    base.fleet.ca_file = config.fleet.ca_file.clone();
    base.fleet.room_id = config.fleet.room_id.clone();
    base.sip.ca_file = config.sip.ca_file.clone();
    base.fleet.role = config.fleet.role.clone();
    base.provisioning = config.provisioning.clone();
    assert_eq!(base.apply_merge_patch(&json).unwrap(), config);
}

#[test]
fn changed_keys_lists_dotted_leaves_that_differ() {
    let a = Config::default();
    assert!(a.changed_keys(&a).is_empty());
    let b = everything_changed();
    let all = a.changed_keys(&b);
    // Every leaf differs (counted, so that a new key does not need this line changed).
    assert_eq!(all.len(), super::leaf_values(&a.to_json()).len(), "{all:?}");
    assert_eq!(all, b.changed_keys(&a));
    assert!(all.contains(&"api.certificate_names".to_owned()));
    assert!(all.contains(&"system.state_dir".to_owned()));
    let mut one = a.clone();
    one.standby.delay_minutes = 11;
    assert_eq!(a.changed_keys(&one), ["standby.delay_minutes"]);
}

#[test]
fn save_then_load_gives_the_same_config_and_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roomd.toml");
    let config = everything_changed();
    config.save(&path).unwrap();
    assert_eq!(Config::load(&path).unwrap(), config);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o600, 0o600, "owner reads and writes: {mode:o}");
    assert_eq!(
        mode & 0o137,
        0,
        "no group write, nothing for others: {mode:o}"
    );
    Config::default().save(&path).unwrap();
    assert_eq!(Config::load(&path).unwrap(), Config::default());
}

#[test]
fn load_and_save_errors_name_the_file() {
    let err = Config::load(Path::new("/nonexistent-roomd/roomd.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cannot read /nonexistent-roomd/roomd.toml: "),
        "{err}"
    );
    let err = Config::default()
        .save(Path::new("/nonexistent-roomd/roomd.toml"))
        .unwrap_err();
    assert!(matches!(err, ConfigError::Write { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent-roomd/roomd.toml"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roomd.toml");
    let mut invalid = Config::default();
    invalid.audio.default_volume = 101;
    let err = invalid.save(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Unloadable { .. }), "{err:?}");
    assert_eq!(err.key(), Some("audio.default_volume"));
    assert!(
        err.to_string()
            .starts_with("refusing to save an invalid configuration to ")
    );
    assert!(!path.exists(), "nothing was written");

    std::fs::write(&path, "[audio]\ndefault_volume = 101\n").unwrap();
    let err = Config::load(&path).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:2:18: audio.default_volume: ", path.display())),
        "{err}"
    );
}

#[test]
fn restart_keys_are_known() {
    assert!(takes_effect_at_next_start("api.listen"));
    assert!(takes_effect_at_next_start("logging.level"));
    assert!(!takes_effect_at_next_start("audio.default_volume"));
    let known = Config::default().changed_keys(&everything_changed());
    for key in NEXT_START_KEYS {
        assert!(
            known.contains(&key.to_owned()),
            "{key} is not a configuration key"
        );
    }
}

#[test]
fn byte_offsets_become_one_based_lines_and_character_columns() {
    let source = "a = 1\nname = \"Übersee\"\n";
    assert_eq!(line_and_column(source, 0), (1, 1));
    assert_eq!(line_and_column(source, 4), (1, 5));
    assert_eq!(line_and_column(source, 6), (2, 1));
    let after_umlaut = source.find("bersee").unwrap();
    assert_eq!(line_and_column(source, after_umlaut), (2, 10));
    // Offsets inside a character or past the end are clamped, never a panic.
    assert_eq!(line_and_column(source, after_umlaut - 1), (2, 9));
    assert_eq!(line_and_column(source, 10_000), (3, 1));
}

#[test]
fn key_span_finds_keys_in_tables_and_dotted_keys() {
    let source = "[audio]\ndefault_volume = 3\n[video]\nselfview = \"on\"\n";
    let span = key_span(source, &["video", "selfview"]).unwrap();
    assert_eq!(&source[span], "selfview");
    let span = key_span(source, &["audio", "missing"]).unwrap();
    assert_eq!(&source[span], "audio");
    assert_eq!(key_span(source, &["nothing"]), None);
    assert_eq!(key_span("[broken", &["audio"]), None);
}

#[test]
fn camera_presets_rules() {
    accepted(
        "video",
        "camera_presets",
        r#"[{ name = "table", pan = -100, tilt = 100, zoom = 400 }]"#,
    );
    for (bad, message) in [
        (
            r#"[{ name = "Table", pan = 0, tilt = 0, zoom = 100 }]"#,
            "preset 1: \"Table\" is not a preset name",
        ),
        (
            r#"[{ name = "a", pan = 0, tilt = 0, zoom = 99 }]"#,
            "preset 1: zoom 99 is out of range 100..=400",
        ),
        (
            r#"[{ name = "a", pan = 0, tilt = 0, zoom = 100 }, { name = "a", pan = 1, tilt = 0, zoom = 100 }]"#,
            "preset 2: the name \"a\" is used twice",
        ),
    ] {
        let err = rejected("video", "camera_presets", bad);
        assert!(err.to_string().contains(message), "{bad}: {err}");
        assert_eq!(err.key(), Some("video.camera_presets"), "{bad}");
    }
    let err = parse(
        "[video]\ncamera_presets = [{ name = \"a\", pan = 0, tilt = 0, zoom = 100, speed = 3 }]\n",
    )
    .unwrap_err();
    assert_eq!(err.key(), Some("video.camera_presets.speed"), "{err}");
}

#[test]
fn audit_log_limits_are_ranged() {
    for (field, min, max) in [
        ("audit_max_file_bytes", 65_536, 67_108_864),
        ("audit_max_files", 1, 100),
        ("audit_retention_days", 1, 3650),
        ("audit_noise_interval_seconds", 1, 3600),
    ] {
        let leaf = |c: &Config| c.to_json()["logging"][field].as_i64();
        assert_eq!(
            leaf(&accepted("logging", field, &min.to_string())),
            Some(min)
        );
        assert_eq!(
            leaf(&accepted("logging", field, &max.to_string())),
            Some(max)
        );
        for bad in [min - 1, max + 1] {
            let err = rejected("logging", field, &bad.to_string());
            assert!(err.to_string().contains("out of range"), "{err}");
        }
    }
}

#[test]
fn client_fingerprints_are_sha256_in_hex_with_or_without_colons() {
    let upper = "AB:".repeat(31) + "AB";
    let config = Config::from_toml_str(
        &format!("[api]\nclient_fingerprints = [\"{upper}\"]\n"),
        Path::new("roomd.toml"),
    )
    .unwrap();
    assert_eq!(config.api.client_fingerprints, ["ab".repeat(32)]);
    for bad in ["ab".repeat(31), "zz".repeat(32), String::new()] {
        let err = Config::from_toml_str(
            &format!("[api]\nclient_fingerprints = [\"{bad}\"]\n"),
            Path::new("roomd.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("SHA-256 fingerprint"), "{err}");
    }
}
