//! The engine's task: chooses the encoder, builds the branches, follows the core's status,
//! reports levels and health back, and rebuilds a branch that fails. It hands each new branch's
//! encoded outputs and mixers to the [`MediaTaps`] that meetings use.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gstreamer as gst;
use gstreamer::prelude::*;
use tokio::task::JoinHandle;

use super::MediaError;
use super::audio::{self, AudioBranch, AudioSetup};
use super::encoder_choice::{self, EncoderSettings};
use super::frame_watch;
use super::taps::MediaTaps;
use super::video::{VideoBranch, VideoSetup};
use super::view::RoomView;
use roomd_base::sync::lock;
use roomd_core::{EngineState, MediaEngineStatus, MediaReport, RoomHandle};
use roomd_hardware::Profile;

/// How long a snapshot waits for the first frame of a display that is (re)starting.
const FIRST_FRAME_WAIT: Duration = Duration::from_secs(3);
/// Wait between attempts when a branch cannot be rebuilt at once (device still gone).
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// The latest frame of the room display, for `GET /api/v1/display/snapshot`.
#[derive(Clone, Default)]
pub struct DisplaySnapshots {
    /// The running display's sink, and a signal for whoever waits for one to run.
    sink: Arc<(Mutex<Option<gstreamer_app::AppSink>>, Condvar)>,
}

impl DisplaySnapshots {
    /// Snapshots of the display that `sink` receives.
    pub fn of(sink: gstreamer_app::AppSink) -> Self {
        let snapshots = DisplaySnapshots::default();
        snapshots.set(Some(sink));
        snapshots
    }

    /// The current display frame, converted to `caps` (e.g. `image/png`). Waits up to
    /// `FIRST_FRAME_WAIT` for a display that is still starting. Blocks: call on a blocking
    /// thread.
    pub fn frame(&self, caps: &gst::Caps) -> Result<gst::Sample, MediaError> {
        let deadline = Instant::now() + FIRST_FRAME_WAIT;
        let sink = self.running_sink(deadline).ok_or(MediaError::NoDisplay)?;
        let sample = match last_sample(&sink) {
            Some(sample) => sample,
            None => first_sample(&sink, deadline).ok_or(MediaError::NoDisplay)?,
        };
        gstreamer_video::convert_sample(&sample, caps, Some(gst::ClockTime::from_seconds(2)))
            .map_err(|e| MediaError::Snapshot(e.to_string()))
    }

    /// The display's sink, waiting until `deadline` for a display that is (re)starting.
    fn running_sink(&self, deadline: Instant) -> Option<gstreamer_app::AppSink> {
        let (sink, started) = &*self.sink;
        let timeout = deadline.saturating_duration_since(Instant::now());
        let (sink, _) = started
            .wait_timeout_while(lock(sink), timeout, |sink| sink.is_none())
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sink.clone()
    }

    /// The current display frame as PNG.
    pub fn png(&self) -> Result<Vec<u8>, MediaError> {
        let caps = gst::Caps::builder("image/png").build();
        let png = self.frame(&caps)?;
        let buffer = png
            .buffer()
            .ok_or_else(|| MediaError::Snapshot("empty PNG".into()))?;
        let map = buffer
            .map_readable()
            .map_err(|e| MediaError::Snapshot(e.to_string()))?;
        Ok(map.as_slice().to_vec())
    }

    /// The sink the display's frames arrive in, while the display runs.
    pub fn sink(&self) -> Option<gstreamer_app::AppSink> {
        lock(&self.sink.0).clone()
    }

    fn set(&self, sink: Option<gstreamer_app::AppSink>) {
        *lock(&self.sink.0) = sink;
        self.sink.1.notify_all();
    }
}

fn last_sample(sink: &gstreamer_app::AppSink) -> Option<gst::Sample> {
    sink.property::<Option<gst::Sample>>("last-sample")
}

/// Waits until `deadline` for the first frame to reach `sink` (a display that just started):
/// a probe on its input hands over that frame with its caps, and is removed once done.
fn first_sample(sink: &gstreamer_app::AppSink, deadline: Instant) -> Option<gst::Sample> {
    let pad = sink.static_pad("sink")?;
    let (arrived_tx, arrived) = std::sync::mpsc::sync_channel(1);
    let probe = pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        if let (Some(buffer), Some(caps)) = (info.buffer(), pad.current_caps()) {
            let sample = gst::Sample::builder()
                .buffer(&buffer.to_owned())
                .caps(&caps)
                .build();
            // Only the first frame is wanted: later sends find the channel full.
            let _ = arrived_tx.try_send(sample);
        }
        gst::PadProbeReturn::Ok
    });
    // A frame may have come between the first look and the probe.
    let sample = last_sample(sink).or_else(|| {
        let timeout = deadline.saturating_duration_since(Instant::now());
        arrived.recv_timeout(timeout).ok()
    });
    if let Some(probe) = probe {
        pad.remove_probe(probe);
    }
    sample
}

/// What the engine is started with.
pub struct EngineSetup {
    /// The room core: the engine follows its status and reports back to it.
    pub room: RoomHandle,
    /// The hardware the pipelines are built for.
    pub profile: Profile,
    /// Shown on the display while the room is unclaimed.
    pub claim_code: Option<String>,
    /// A touch panel's pairing code, shown while a pairing request is pending. It reaches the
    /// display this way only, never through the status.
    pub pairing_code: tokio::sync::watch::Receiver<Option<String>>,
    /// `video.codec`: the codec whose encoders are tried first.
    pub video_codec: roomd_model::config::VideoCodec,
}

/// What the engine hands out while it runs.
pub struct EngineHandles {
    /// The display's frames, for the snapshot route.
    pub display: DisplaySnapshots,
    /// Encoded outgoing media and far-end slots, for meetings.
    pub taps: MediaTaps,
    /// The engine's task; it ends (pipelines stopped) once the room core has shut down.
    pub task: JoinHandle<()>,
}

/// Starts the media engine on the current tokio runtime. GStreamer must be initialised.
pub fn start(setup: EngineSetup) -> EngineHandles {
    let display = DisplaySnapshots::default();
    let taps = MediaTaps::default();
    let task = tokio::spawn(run(setup, display.clone(), taps.clone()));
    EngineHandles {
        display,
        taps,
        task,
    }
}

async fn run(setup: EngineSetup, snapshots: DisplaySnapshots, taps: MediaTaps) {
    let room = setup.room.clone();
    let mut status = MediaEngineStatus::starting();
    match Engine::start(setup, snapshots, taps).await {
        Ok(mut engine) => {
            status.state = EngineState::Running;
            status.encoder = engine
                .video_setup
                .as_ref()
                .map(|v| v.encoder.clone())
                .unwrap_or_default();
            let _ = room.report(MediaReport::Engine(status)).await;
            engine.run().await;
        }
        Err(e) => {
            tracing::error!("media engine: {e}");
            status.state = EngineState::Failed;
            status.detail = e.to_string();
            let _ = room.report(MediaReport::Engine(status)).await;
        }
    }
}

struct Engine {
    room: RoomHandle,
    claim_code: Option<String>,
    pairing_code: tokio::sync::watch::Receiver<Option<String>>,
    view: RoomView,
    video_setup: Option<VideoSetup>,
    audio_setup: Option<AudioSetup>,
    video: Option<VideoBranch>,
    audio: Option<AudioBranch>,
    snapshots: DisplaySnapshots,
    taps: MediaTaps,
}

impl Engine {
    async fn start(
        setup: EngineSetup,
        snapshots: DisplaySnapshots,
        taps: MediaTaps,
    ) -> Result<Engine, MediaError> {
        let profile = setup.profile;
        taps.set_h264_decoders(profile.decoders.h264.clone());
        let video_setup = match (profile.cameras.first(), profile.displays.first()) {
            (Some(camera), Some(display)) => {
                let settings = EncoderSettings {
                    bitrate_kbps: bitrate_for(camera.width, camera.height),
                    framerate: camera.framerate,
                };
                let wanted = match setup.video_codec {
                    roomd_model::config::VideoCodec::H264 => encoder_choice::Codec::H264,
                    roomd_model::config::VideoCodec::Vp8 => encoder_choice::Codec::Vp8,
                };
                let candidates = encoder_choice::candidates(&profile.encoders.h264, wanted);
                let chosen = tokio::task::spawn_blocking(move || {
                    encoder_choice::choose(&candidates, settings)
                })
                .await
                .map_err(|e| MediaError::Build(format!("encoder choice: {e}")))??;
                tracing::info!(
                    "video encoder: {} ({})",
                    chosen.name,
                    if chosen.hardware {
                        "hardware"
                    } else {
                        "software"
                    }
                );
                Some(VideoSetup {
                    camera: camera.clone(),
                    content: profile.content_inputs.first().cloned(),
                    display: display.clone(),
                    encoder: chosen.name,
                    settings,
                })
            }
            _ => None,
        };
        let audio_setup = profile.microphones.first().map(|microphone| AudioSetup {
            microphone: microphone.clone(),
            speaker: profile.speakers.first().cloned(),
        });
        let mut engine = Engine {
            room: setup.room,
            claim_code: setup.claim_code,
            pairing_code: setup.pairing_code,
            view: RoomView::private(),
            video_setup,
            audio_setup,
            video: None,
            audio: None,
            snapshots,
            taps,
        };
        engine.view = engine.current_view();
        if engine.video_setup.is_some() {
            engine.video = Some(engine.build_video().await?);
        }
        if engine.audio_setup.is_some() {
            engine.audio = Some(engine.build_audio().await?);
        }
        Ok(engine)
    }

    /// The code the display shows: the claim code while unclaimed, else a pending pairing code.
    fn display_code(&self) -> Option<String> {
        if self.view.claimed {
            self.pairing_code.borrow().clone()
        } else {
            self.claim_code.clone()
        }
    }

    fn current_view(&self) -> RoomView {
        RoomView::from_status(&self.room.status().status)
    }

    /// Builds and starts the video branch. Both block (GStreamer state changes wait for the
    /// pipeline to settle, up to seconds), so they run on a blocking thread, not on the async
    /// workers; a branch that fails to start is stopped when dropped.
    async fn build_video(&self) -> Result<VideoBranch, MediaError> {
        let setup = self.video_setup.clone().ok_or(MediaError::NoDisplay)?;
        let (view, code) = (self.view.clone(), self.display_code());
        let branch = tokio::task::spawn_blocking(move || {
            let branch = VideoBranch::build(&setup)?;
            branch.apply(&view, code.as_deref());
            branch.start()?;
            Ok::<_, MediaError>(branch)
        })
        .await
        .map_err(|e| MediaError::Build(format!("video branch task: {e}")))??;
        self.snapshots.set(Some(branch.snapshot.clone()));
        let setup = self.video_setup.as_ref().ok_or(MediaError::NoDisplay)?;
        self.taps.attach_video(
            &crate::taps::CameraEncoder {
                codec: branch.codec,
                element: &branch.encoder,
                name: &setup.encoder,
                kbps: setup.settings.bitrate_kbps,
            },
            &branch.keyframes,
            &branch.encoded,
            branch.mixer.clone(),
        );
        if let Some(content) = &branch.content {
            self.taps
                .attach_content(&content.keyframes, &content.encoded);
        }
        Ok(branch)
    }

    /// Builds and starts the audio branch off the async workers (see `build_video`).
    async fn build_audio(&self) -> Result<AudioBranch, MediaError> {
        let setup = self
            .audio_setup
            .clone()
            .ok_or_else(|| MediaError::Build("no microphone".into()))?;
        let view = self.view.clone();
        let branch = tokio::task::spawn_blocking(move || {
            let branch = AudioBranch::build(&setup)?;
            branch.apply(&view);
            branch.start()?;
            Ok::<_, MediaError>(branch)
        })
        .await
        .map_err(|e| MediaError::Build(format!("audio branch task: {e}")))??;
        self.taps
            .attach_audio(&branch.encoded, &branch.encoder, branch.speaker.clone());
        Ok(branch)
    }

    async fn run(&mut self) {
        let mut status = self.room.watch_status();
        let mut pairing = self.pairing_code.clone();
        // The encoder's rate as it is now, then each change: read from the one watch, so that
        // no change between the engine's first report and this loop is missed.
        let mut camera_kbps = self.taps.camera_bitrate_watch();
        let kbps = *camera_kbps.borrow_and_update();
        let _ = self.room.report(MediaReport::CameraBitrate { kbps }).await;
        let mut video_bus = bus_stream(self.video.as_ref().map(|v| &v.pipeline));
        let mut audio_bus = bus_stream(self.audio.as_ref().map(|a| &a.pipeline));
        let mut watchdog = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = watchdog.tick() => {
                    let stall = self.video.as_ref().and_then(|v| {
                        v.watches.iter().find_map(|w| w.stalled(frame_watch::STALL_LIMIT))
                    });
                    if let Some(reason) = stall {
                        self.rebuild_video(reason).await;
                        video_bus = bus_stream(self.video.as_ref().map(|v| &v.pipeline));
                    }
                }
                changed = status.changed() => {
                    if changed.is_err() {
                        break; // the core stopped
                    }
                    let view = self.current_view();
                    // Most status changes (levels, hardware) do not concern the pipelines.
                    if view == self.view {
                        continue;
                    }
                    self.view = view;
                    if let Some(v) = &self.video {
                        v.apply(&self.view, self.display_code().as_deref());
                    }
                    if let Some(a) = &self.audio {
                        a.apply(&self.view);
                    }
                }
                Ok(()) = camera_kbps.changed() => {
                    let kbps = *camera_kbps.borrow_and_update();
                    let _ = self.room.report(MediaReport::CameraBitrate { kbps }).await;
                }
                Ok(()) = pairing.changed() => {
                    if let Some(v) = &self.video {
                        v.apply(&self.view, self.display_code().as_deref());
                    }
                }
                Some(message) = video_bus.next() => {
                    if let Some(reason) = failure(&message) {
                        self.rebuild_video(reason).await;
                        video_bus = bus_stream(self.video.as_ref().map(|v| &v.pipeline));
                    }
                }
                Some(message) = audio_bus.next() => {
                    if let Some(rms_db) = audio::rms_db(&message) {
                        let _ = self.room.report(MediaReport::MicrophoneLevel { rms_db }).await;
                    } else if let Some(reason) = failure(&message) {
                        self.rebuild_audio(reason).await;
                        audio_bus = bus_stream(self.audio.as_ref().map(|a| &a.pipeline));
                    }
                }
            }
        }
        self.stop();
    }

    async fn rebuild_video(&mut self, reason: String) {
        tracing::warn!("video branch failed: {reason}; rebuilding");
        let started = Instant::now();
        self.snapshots.set(None);
        self.taps.detach_video();
        if let Some(old) = self.video.take() {
            stop_off_workers(old).await;
        }
        loop {
            match self.build_video().await {
                Ok(branch) => {
                    self.video = Some(branch);
                    break;
                }
                Err(e) => {
                    tracing::warn!("video branch cannot be rebuilt yet: {e}");
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
        }
        self.report_rebuilt("video", reason, started).await;
    }

    async fn rebuild_audio(&mut self, reason: String) {
        tracing::warn!("audio branch failed: {reason}; rebuilding");
        let started = Instant::now();
        self.taps.detach_audio();
        if let Some(old) = self.audio.take() {
            stop_off_workers(old).await;
        }
        loop {
            match self.build_audio().await {
                Ok(branch) => {
                    self.audio = Some(branch);
                    break;
                }
                Err(e) => {
                    tracing::warn!("audio branch cannot be rebuilt yet: {e}");
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
        }
        self.report_rebuilt("audio", reason, started).await;
    }

    async fn report_rebuilt(&self, branch: &'static str, reason: String, started: Instant) {
        let elapsed_ms = started.elapsed().as_millis() as u64;
        tracing::info!("{branch} branch rebuilt in {elapsed_ms} ms");
        let _ = self
            .room
            .report(MediaReport::BranchRebuilt {
                branch,
                reason,
                elapsed_ms,
            })
            .await;
    }

    fn stop(&mut self) {
        self.snapshots.set(None);
        self.taps.detach_video();
        self.taps.detach_audio();
        if let Some(v) = self.video.take() {
            v.stop();
        }
        if let Some(a) = self.audio.take() {
            a.stop();
        }
    }
}

/// Stops a branch on a blocking thread: setting a pipeline to NULL waits for its streaming
/// threads. The branches stop themselves when dropped.
async fn stop_off_workers<B: Send + 'static>(branch: B) {
    let _ = tokio::task::spawn_blocking(move || drop(branch)).await;
}

/// A bitrate that suits the picture size at conference quality.
fn bitrate_for(width: u32, height: u32) -> u32 {
    match width * height {
        0..=230_400 => 500,        // up to 640x360
        230_401..=921_600 => 1500, // up to 1280x720
        _ => 3000,
    }
}

/// Messages of `pipeline`'s bus; a stream that never yields when there is no pipeline.
fn bus_stream(
    pipeline: Option<&gst::Pipeline>,
) -> futures_util::stream::BoxStream<'static, gst::Message> {
    match pipeline.and_then(|p| p.bus()) {
        Some(bus) => bus.stream().boxed(),
        None => futures_util::stream::pending().boxed(),
    }
}

/// The reason a pipeline can no longer run, if `message` says so.
fn failure(message: &gst::Message) -> Option<String> {
    match message.view() {
        gst::MessageView::Error(e) => Some(match e.src() {
            Some(src) => format!("{}: {}", src.name(), e.error()),
            None => e.error().to_string(),
        }),
        gst::MessageView::Eos(_) => Some("a source ended".to_owned()),
        _ => None,
    }
}
