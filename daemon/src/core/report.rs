//! What the media engine tells the core: facts it learned from the hardware and the pipelines.
//!
//! Reports are not commands: nobody asked for them, so they neither count as activity (they
//! never wake the room from standby) nor appear in the API's command list.

use serde::Serialize;

use crate::hardware::HardwareStatus;

#[derive(Debug, Clone, PartialEq)]
pub enum MediaReport {
    /// What the hardware probe found (`status.system.hardware`).
    Hardware(HardwareStatus),
    /// The media engine's overall state (`status.system.media`).
    Engine(MediaEngineStatus),
    /// Microphone level after processing, in dBFS (`status.audio.microphones.level`).
    MicrophoneLevel { rms_db: f64 },
    /// A branch of the pipeline failed and was built again (event `media.branch.rebuilt`).
    BranchRebuilt {
        branch: &'static str,
        reason: String,
        elapsed_ms: u64,
    },
}

/// `status.system.media`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MediaEngineStatus {
    /// `starting`, `running` or `failed`.
    pub state: &'static str,
    /// Why the engine failed, empty otherwise.
    pub detail: String,
    /// The H.264 encoder element in use, empty when none could be started.
    pub encoder: String,
    /// How many times a branch was rebuilt since roomd started.
    pub rebuilds: u64,
}

impl MediaEngineStatus {
    pub fn starting() -> Self {
        MediaEngineStatus {
            state: "starting",
            detail: String::new(),
            encoder: String::new(),
            rebuilds: 0,
        }
    }
}
