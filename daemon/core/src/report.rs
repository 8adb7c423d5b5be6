//! What the media engine tells the core: facts it learned from the hardware and the pipelines.
//!
//! Reports are not commands: nobody asked for them, so they neither count as activity (they
//! never wake the room from standby) nor appear in the API's command list.

use serde::Serialize;

use roomd_hardware::HardwareStatus;

/// One fact from the media engine, sent to the core with [`RoomHandle::report`](crate::RoomHandle::report).
#[derive(Debug, Clone, PartialEq)]
pub enum MediaReport {
    /// What the hardware probe found (`status.system.hardware`).
    Hardware(HardwareStatus),
    /// The media engine's overall state (`status.system.media`).
    Engine(MediaEngineStatus),
    /// The camera encoder's bit rate changed (`status.system.media.camera_kbps`).
    CameraBitrate {
        /// kbit/s, read back from the encoder; `None` while there is none.
        kbps: Option<u32>,
    },
    /// Microphone level after processing, in dBFS (`status.audio.microphones.level`).
    MicrophoneLevel {
        /// RMS level in dBFS: 0 is full scale, -100 silence.
        rms_db: f64,
    },
    /// A branch of the pipeline failed and was built again (event `media.branch.rebuilt`).
    BranchRebuilt {
        /// `video` or `audio`.
        branch: &'static str,
        /// What failed: a GStreamer error, or a stream that stopped delivering frames.
        reason: String,
        /// Milliseconds the rebuild took, from noticing the failure until the new branch ran.
        elapsed_ms: u64,
    },
}

/// `status.system.media`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MediaEngineStatus {
    /// Where the engine is: starting, running or failed.
    pub state: EngineState,
    /// Why the engine failed, empty otherwise.
    pub detail: String,
    /// The H.264 encoder element in use, empty when none could be started.
    pub encoder: String,
    /// How many times a branch was rebuilt since roomd started.
    pub rebuilds: u64,
    /// The bit rate the camera encoder is set to now, kbit/s, read back from it: what the
    /// picture size calls for, lowered while a far end takes less; `None` without an encoder.
    pub camera_kbps: Option<u32>,
}

/// `status.system.media.state`: where the media engine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineState {
    /// The pipelines are being built; nothing is shown or sent yet.
    Starting,
    /// The pipelines play.
    Running,
    /// The engine could not start; `detail` says why.
    Failed,
}

impl MediaEngineStatus {
    /// The state before the engine has chosen an encoder or built a branch.
    pub fn starting() -> Self {
        MediaEngineStatus {
            state: EngineState::Starting,
            detail: String::new(),
            encoder: String::new(),
            rebuilds: 0,
            camera_kbps: None,
        }
    }
}
