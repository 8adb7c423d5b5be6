//! The room's figures, taken from the core's typed status snapshot at scrape time.

use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use roomd_core::{
    CameraState, ContentState, DbusState, EngineState, MeetingState, RoomStatus, StandbyState,
};

use super::process::{ProcessStats, Temperature};

type Labels = Vec<(&'static str, String)>;

/// A registry filled for one scrape.
pub(super) struct Scrape {
    pub(super) registry: Registry,
}

impl Scrape {
    pub(super) fn new() -> Self {
        Scrape {
            registry: Registry::default(),
        }
    }

    fn gauge(&mut self, name: &str, help: &str, unit: Option<Unit>, value: f64) {
        let gauge = ConstGauge::new(value);
        match unit {
            Some(unit) => self.registry.register_with_unit(name, help, unit, gauge),
            None => self.registry.register(name, help, gauge),
        }
    }

    /// A gauge of whole numbers (written without a fraction).
    fn count(&mut self, name: &str, help: &str, value: i64) {
        self.registry.register(name, help, ConstGauge::new(value));
    }

    fn flag(&mut self, name: &str, help: &str, value: bool) {
        self.count(name, help, i64::from(value));
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.registry.register(name, help, ConstCounter::new(value));
    }

    fn seconds_counter(&mut self, name: &str, help: &str, value: f64) {
        self.registry
            .register_with_unit(name, help, Unit::Seconds, ConstCounter::new(value));
    }

    fn gauges(
        &mut self,
        name: &str,
        help: &str,
        unit: Option<Unit>,
        values: impl IntoIterator<Item = (Labels, f64)>,
    ) {
        let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        for (labels, value) in values {
            family.get_or_create(&labels).set(value);
        }
        match unit {
            Some(unit) => self.registry.register_with_unit(name, help, unit, family),
            None => self.registry.register(name, help, family),
        }
    }

    /// A family of whole-number gauges.
    fn whole_gauges(
        &mut self,
        name: &str,
        help: &str,
        values: impl IntoIterator<Item = (Labels, i64)>,
    ) {
        let family = Family::<Labels, Gauge>::default();
        for (labels, value) in values {
            family.get_or_create(&labels).set(value);
        }
        self.registry.register(name, help, family);
    }

    fn counters(
        &mut self,
        name: &str,
        help: &str,
        values: impl IntoIterator<Item = (Labels, u64)>,
    ) {
        let family = Family::<Labels, Counter>::default();
        for (labels, value) in values {
            family.get_or_create(&labels).inc_by(value);
        }
        self.registry.register(name, help, family);
    }

    /// One series per state, 1 for the current one and 0 for the others (a state set).
    fn states(&mut self, name: &str, help: &str, all: &[&'static str], current: &str) {
        let family = Family::<Labels, Gauge>::default();
        for state in all {
            family
                .get_or_create(&vec![("state", (*state).to_owned())])
                .set(i64::from(*state == current));
        }
        self.registry.register(name, help, family);
    }

    fn info(&mut self, name: &str, help: &str, labels: Labels) {
        self.registry.register(name, help, Info::new(labels));
    }

    /// roomd's own figures from the status snapshot; `now` for the uptime.
    pub(super) fn room(&mut self, status: &RoomStatus, now: OffsetDateTime) {
        let system = &status.system;
        self.info(
            "roomd_build",
            "The roomd build running, and the hardware profile it runs with",
            vec![
                ("version", system.version.to_owned()),
                ("hardware_profile", system.hardware_profile.clone()),
            ],
        );
        if let Ok(started) = OffsetDateTime::parse(&system.started_at, &Rfc3339) {
            self.gauge(
                "roomd_uptime",
                "Time since the room core started",
                Some(Unit::Seconds),
                (now - started).as_seconds_f64().max(0.0),
            );
        }
        self.flag(
            "roomd_claimed",
            "1 once the device has its first admin",
            system.claimed,
        );

        // Media engine.
        let media = &system.media;
        self.states(
            "roomd_media_engine_state",
            "Where the media engine is (starting, running, failed): 1 for the current state",
            &["starting", "running", "failed"],
            match media.state {
                EngineState::Starting => "starting",
                EngineState::Running => "running",
                EngineState::Failed => "failed",
            },
        );
        self.counter(
            "roomd_media_engine_rebuilds",
            "Media engine branches rebuilt since roomd started (a device lost and found, an encoder restarted)",
            media.rebuilds,
        );
        self.info(
            "roomd_media_encoder",
            "The H.264 encoder element in use (empty when none could be started)",
            vec![("encoder", media.encoder.clone())],
        );
        self.states(
            "roomd_dbus_state",
            "Whether org.roomd.Room1 is served on D-Bus: 1 for the current state",
            &["off", "serving", "failed"],
            match system.dbus.state {
                DbusState::Off => "off",
                DbusState::Serving => "serving",
                DbusState::Failed => "failed",
            },
        );

        self.meeting(status);

        // Audio, video, standby.
        self.gauge(
            "roomd_audio_volume_ratio",
            "Speaker volume, 0 to 1",
            None,
            f64::from(status.audio.volume) / 100.0,
        );
        self.flag(
            "roomd_audio_microphones_muted",
            "1 while the microphones are muted",
            status.audio.microphones.muted,
        );
        self.gauge(
            "roomd_audio_microphone_level_dbfs",
            "Level of the processed microphone signal in dBFS (RMS; -100 is silence)",
            None,
            status.audio.microphones.level,
        );
        self.flag(
            "roomd_video_camera_on",
            "1 while the camera's picture is used",
            status.video.camera.state == CameraState::On,
        );
        self.flag(
            "roomd_video_content_active",
            "1 while content is shared",
            status.video.content.state == ContentState::Active,
        );
        self.flag(
            "roomd_standby",
            "1 while the room is in standby",
            status.standby.state == StandbyState::On,
        );

        // Firmware updates.
        let update = &status.update;
        self.states(
            "roomd_update_state",
            "Where the current or last firmware update stands: 1 for the current state",
            &["idle", "downloading", "installing", "installed", "failed"],
            update.state.as_str(),
        );
        self.flag(
            "roomd_update_available",
            "1 when updates can be installed (roomd runs from a firmware image and RAUC answers)",
            update.available,
        );
        self.flag(
            "roomd_update_needs_reboot",
            "1 while an installed update waits for update.reboot",
            update.needs_reboot,
        );
        self.flag(
            "roomd_update_marked_good",
            "1 once roomd marked the booted slot good in this boot",
            update.marked_good,
        );
        self.flag(
            "roomd_update_rolled_back",
            "1 when the boot loader fell back because the newest slot did not become good",
            update.rolled_back.is_some(),
        );
        if let Some(percent) = update.progress.percent {
            self.gauge(
                "roomd_update_progress_ratio",
                "Progress of the current update step, 0 to 1 (only while known)",
                None,
                f64::from(percent) / 100.0,
            );
        }
        self.info(
            "roomd_firmware",
            "The running firmware image and slot (empty when roomd does not run from an image)",
            vec![
                ("image_version", update.image_version.clone()),
                ("booted_slot", update.booted_slot.clone()),
            ],
        );
    }

    fn meeting(&mut self, status: &RoomStatus) {
        const STATES: [MeetingState; 6] = [
            MeetingState::Idle,
            MeetingState::Joining,
            MeetingState::Lobby,
            MeetingState::Connected,
            MeetingState::Reconnecting,
            MeetingState::Failed,
        ];
        let meeting = &status.meeting;
        let all: Vec<&'static str> = STATES.iter().map(|s| s.as_str()).collect();
        self.states(
            "roomd_meeting_state",
            "Where the room stands in a meeting: 1 for the current state",
            &all,
            meeting.state.as_str(),
        );
        self.count(
            "roomd_meeting_participants",
            "Other participants of the meeting (the room itself not counted)",
            i64::try_from(meeting.participants.len()).unwrap_or(i64::MAX),
        );
        self.flag(
            "roomd_meeting_encrypted",
            "1 while the meeting has streams and every one is DTLS-SRTP",
            meeting.encrypted,
        );

        // Per stream, labelled by participant id (`self`/`content` for the room's own),
        // direction and kind; refreshed every second by the meeting engine.
        let streams = &meeting.streams;
        let labels = |s: &roomd_core::StreamStats| -> Labels {
            vec![
                ("participant", s.participant.chars().take(64).collect()),
                ("direction", s.direction.to_owned()),
                ("kind", s.kind.to_owned()),
            ]
        };
        let per = |f: fn(&roomd_core::StreamStats) -> f64| -> Vec<(Labels, f64)> {
            streams.iter().map(|s| (labels(s), f(s))).collect()
        };
        self.gauges(
            "roomd_stream_bitrate",
            "Bit rate of the stream over the last second, in bytes per second",
            Some(Unit::Other("bytes_per_second".into())),
            per(|s| s.bitrate_kbps * 1000.0 / 8.0),
        );
        self.gauges(
            "roomd_stream_loss",
            "Packets lost in proportion to all the stream's packets since it started, 0 to 1",
            // `Unit::Ratios` would write `_ratios`; Prometheus's convention is `_ratio`.
            Some(Unit::Other("ratio".into())),
            per(|s| s.loss_percent / 100.0),
        );
        self.whole_gauges(
            "roomd_stream_packets_lost",
            "Packets lost since the stream started (sent streams: as the far end reports it); negative when duplicates arrive",
            streams.iter().map(|s| (labels(s), s.packets_lost)),
        );
        self.gauges(
            "roomd_stream_jitter",
            "Interarrival jitter (sent streams: as the far end reports it)",
            Some(Unit::Seconds),
            per(|s| s.jitter_ms / 1000.0),
        );
        self.gauges(
            "roomd_stream_round_trip_time",
            "Round-trip time from RTCP (0 for received streams)",
            Some(Unit::Seconds),
            per(|s| s.rtt_ms / 1000.0),
        );
        self.gauges(
            "roomd_stream_frame_rate",
            "Video frames per second (0 for audio)",
            None,
            per(|s| s.frame_rate),
        );
        self.whole_gauges(
            "roomd_stream_encrypted",
            "1 while the stream goes through SRTP keyed by a connected DTLS handshake",
            streams.iter().map(|s| (labels(s), i64::from(s.encrypted))),
        );
        self.counters(
            "roomd_stream_frames",
            "Video frames sent or decoded since the stream started",
            streams.iter().map(|s| (labels(s), s.frames)),
        );
        self.counters(
            "roomd_stream_fec_recovered_frames",
            "Received audio: lost voice frames rebuilt from Opus in-band FEC",
            streams.iter().map(|s| (labels(s), s.fec_recovered)),
        );
        self.counters(
            "roomd_stream_concealed_frames",
            "Received audio: lost voice frames concealed",
            streams.iter().map(|s| (labels(s), s.concealed)),
        );
    }

    /// The process's figures; nothing when `/proc` cannot be read.
    pub(super) fn process(&mut self, stats: Option<&ProcessStats>) {
        let Some(p) = stats else { return };
        let whole = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.seconds_counter(
            "roomd_process_cpu",
            "User and system CPU time roomd used",
            p.cpu_seconds,
        );
        self.registry.register_with_unit(
            "roomd_process_resident_memory",
            "Resident memory of roomd",
            Unit::Bytes,
            ConstGauge::new(whole(p.resident_bytes)),
        );
        self.registry.register_with_unit(
            "roomd_process_virtual_memory",
            "Virtual memory size of roomd",
            Unit::Bytes,
            ConstGauge::new(whole(p.virtual_bytes)),
        );
        self.count(
            "roomd_process_threads",
            "Threads of roomd",
            whole(p.threads),
        );
        self.count(
            "roomd_process_open_fds",
            "Open file descriptors of roomd",
            whole(p.open_fds),
        );
        if let Some(max) = p.max_fds {
            self.count(
                "roomd_process_max_fds",
                "The most file descriptors roomd may open (soft limit)",
                whole(max),
            );
        }
        self.gauge(
            "roomd_process_start_time",
            "Start of the roomd process since the Unix epoch",
            Some(Unit::Seconds),
            p.start_time_seconds,
        );
    }

    /// The board's temperatures; no series on hardware without thermal zones.
    pub(super) fn temperatures(&mut self, zones: &[Temperature]) {
        if zones.is_empty() {
            return;
        }
        self.gauges(
            "roomd_thermal_zone_temperature",
            "Temperature of each thermal zone the kernel reports (/sys/class/thermal)",
            Some(Unit::Celsius),
            zones.iter().map(|z| {
                (
                    vec![("zone", z.zone.clone()), ("type", z.kind.clone())],
                    z.celsius,
                )
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::prometheus_text;
    use roomd_core::{IdentityStatus, StreamStats};
    use roomd_model::config::Config;

    fn status() -> RoomStatus {
        let identity = IdentityStatus {
            backend: "software",
            key_sha256: String::new(),
            certificate_sha256: String::new(),
            warning: None,
        };
        RoomStatus::at_start(&Config::default(), true, identity)
    }

    fn render(status: &RoomStatus) -> String {
        let mut scrape = Scrape::new();
        scrape.room(status, OffsetDateTime::now_utc());
        scrape.temperatures(&[Temperature {
            zone: "thermal_zone0".into(),
            kind: "x86_pkg_temp".into(),
            celsius: 51.5,
        }]);
        let mut text = String::new();
        prometheus_text::encode(&mut text, &scrape.registry).unwrap();
        text
    }

    #[test]
    fn a_meeting_with_streams() {
        let mut status = status();
        status.meeting.state = MeetingState::Connected;
        status.meeting.encrypted = true;
        status.meeting.streams = vec![
            StreamStats {
                participant: "7311\"x".into(),
                direction: "receive",
                kind: "video",
                bitrate_kbps: 1200.0,
                packets_lost: 12,
                loss_percent: 0.5,
                jitter_ms: 12.0,
                frame_rate: 29.5,
                frames: 900,
                encrypted: true,
                ..StreamStats::default()
            },
            StreamStats {
                participant: "self".into(),
                direction: "send",
                kind: "audio",
                rtt_ms: 40.0,
                ..StreamStats::default()
            },
        ];
        status.system.media.rebuilds = 3;
        let text = render(&status);
        for line in [
            "roomd_meeting_state{state=\"connected\"} 1",
            "roomd_meeting_state{state=\"idle\"} 0",
            "roomd_meeting_encrypted 1",
            // Label values are escaped: a participant id cannot break the format.
            r#"roomd_stream_bitrate_bytes_per_second{participant="7311\"x",direction="receive",kind="video"} 150000.0"#,
            r#"roomd_stream_loss_ratio{participant="7311\"x",direction="receive",kind="video"} 0.005"#,
            r#"roomd_stream_jitter_seconds{participant="7311\"x",direction="receive",kind="video"} 0.012"#,
            r#"roomd_stream_frame_rate{participant="7311\"x",direction="receive",kind="video"} 29.5"#,
            r#"roomd_stream_packets_lost{participant="7311\"x",direction="receive",kind="video"} 12"#,
            r#"roomd_stream_encrypted{participant="7311\"x",direction="receive",kind="video"} 1"#,
            r#"roomd_stream_frames_total{participant="7311\"x",direction="receive",kind="video"} 900"#,
            r#"roomd_stream_round_trip_time_seconds{participant="self",direction="send",kind="audio"} 0.04"#,
            "roomd_media_engine_rebuilds_total 3",
            "roomd_media_engine_state{state=\"starting\"} 1",
            r#"roomd_thermal_zone_temperature_celsius{zone="thermal_zone0",type="x86_pkg_temp"} 51.5"#,
            "roomd_standby 0",
            "roomd_audio_volume_ratio 0.5",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line}:\n{text}");
        }
        // Every family has its help and type once.
        let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
        let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        assert_eq!(helps, types);
    }

    #[test]
    fn no_meeting_no_stream_series_and_no_update_progress() {
        let text = render(&status());
        assert!(
            !text.lines().any(|l| l.starts_with("roomd_stream_")),
            "{text}"
        );
        assert!(!text.contains("roomd_update_progress_ratio"), "{text}");
        assert!(
            text.lines()
                .any(|l| l == "roomd_update_state{state=\"idle\"} 1"),
            "{text}"
        );
    }
}
