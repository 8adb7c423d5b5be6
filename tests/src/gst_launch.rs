//! Bare GStreamer graphs in `gst-launch-1.0` processes: the references the media benchmarks
//! compare roomd with, and stand-in senders they feed those references from.

use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::HarnessError;

/// How long a graph gets to fail at parsing or linking before it counts as running.
const START_CHECK: Duration = Duration::from_secs(1);

/// A running `gst-launch-1.0`; killed when dropped.
pub struct GstLaunch {
    what: String,
    child: Child,
    /// Frames counted per element, from what `-v` prints (see [`GstLaunch::frames`]).
    frames: Arc<Mutex<HashMap<String, u64>>>,
}

impl GstLaunch {
    /// Starts `description` (a launch line; "double-quoted" values keep their spaces) and
    /// checks that it still runs a moment later, so that a graph that does not parse is told
    /// apart from one being measured.
    pub fn start(what: &str, description: &str) -> Result<GstLaunch, HarnessError> {
        // gst-launch escapes each argument and joins them back into one description: hand over
        // the words rather than quoting them for a shell.
        let mut child = Command::new("gst-launch-1.0")
            .arg("-v")
            .args(words(description))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                HarnessError::io(
                    "cannot run gst-launch-1.0 (Debian package gstreamer1.0-tools)",
                    e,
                )
            })?;
        let frames = Arc::new(Mutex::new(HashMap::new()));
        if let Some(stdout) = child.stdout.take() {
            let frames = frames.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some((name, count)) = frame_count(&line)
                        && let Ok(mut frames) = frames.lock()
                    {
                        let entry: &mut u64 = frames.entry(name).or_default();
                        *entry = count.unwrap_or(*entry + 1);
                    }
                }
            });
        }
        let mut launched = GstLaunch {
            what: what.to_owned(),
            child,
            frames,
        };
        std::thread::sleep(START_CHECK);
        launched.check_running()?;
        Ok(launched)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Frames that went through the element called `name` so far: an `identity silent=false`
    /// (one `-v` line per buffer) or an `fpsdisplaysink` (its latest `rendered:` figure).
    pub fn frames(&self, name: &str) -> u64 {
        self.frames
            .lock()
            .ok()
            .and_then(|f| f.get(name).copied())
            .unwrap_or(0)
    }

    /// An error with gst-launch's stderr once the process has ended.
    pub fn check_running(&mut self) -> Result<(), HarnessError> {
        let status = self
            .child
            .try_wait()
            .map_err(|e| HarnessError::io(format!("waiting for {}", self.what), e))?;
        let Some(status) = status else {
            return Ok(());
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        Err(HarnessError::PeerStart {
            what: self.what.clone(),
            message: format!("gst-launch-1.0 ended ({status}): {stderr}"),
        })
    }
}

impl Drop for GstLaunch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The element a `-v` line of gst-launch is about and, for an fpsdisplaysink report, the frames
/// it rendered so far: `/GstPipeline:pipeline0/GstIdentity:decoded_1: last-message = chain …`
/// or `…/GstFPSDisplaySink:display: last-message = rendered: 95, dropped: 0, …`.
fn frame_count(line: &str) -> Option<(String, Option<u64>)> {
    let (path, message) = line.split_once(": last-message = ")?;
    let name = path.rsplit_once(':')?.1.to_owned();
    let rendered = message
        .strip_prefix("rendered: ")
        .and_then(|rest| rest.split(',').next()?.trim().parse().ok());
    Some((name, rendered))
}

/// Splits a launch description into words, keeping "double-quoted" values together (the quotes
/// are dropped, as a shell would).
pub fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// roomd's camera encoder `encoder` with roomd's settings for a `width` × `height` picture at
/// `fps` (daemon/src/media/encoder_choice.rs, and engine.rs's bitrate_for), followed by what
/// roomd puts after it for browsers and the RTP payloader, as a launch fragment. `None` for an
/// encoder the benchmarks have no mirror of (hardware ones).
pub fn roomd_encoder(encoder: &str, width: u32, height: u32, fps: u32) -> Option<String> {
    let kbps = match width * height {
        0..=230_400 => 500,
        230_401..=921_600 => 1500,
        _ => 3000,
    };
    let (bps, gop) = (kbps * 1000, fps * 10);
    let h264 = "! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1 \
                ! video/x-h264,stream-format=byte-stream,alignment=au ! rtph264pay pt=96";
    Some(match encoder {
        "x264enc" => format!(
            "x264enc tune=zerolatency speed-preset=ultrafast pass=cbr bitrate={kbps} bframes=0 \
             b-adapt=false key-int-max={gop} {h264}"
        ),
        "openh264enc" => format!(
            "openh264enc usage-type=camera rate-control=bitrate bitrate={bps} complexity=low \
             gop-size={gop} {h264}"
        ),
        "vp8enc" => format!(
            "vp8enc deadline=1 cpu-used=-16 end-usage=cbr lag-in-frames=0 \
             target-bitrate={bps} keyframe-max-dist={gop} ! rtpvp8pay pt=96"
        ),
        _ => return None,
    })
}

/// The converter settings roomd gives each compositor pad (daemon/src/media/video.rs,
/// `scale_for_display`), as a pad property value: `sink_0::converter-config=` this.
pub const ROOMD_PAD_CONVERTER: &str = "\"GstVideoConverter, \
    GstVideoConverter.resampler-method=(GstVideoResamplerMethod)linear, \
    GstVideoConverter.chroma-resampler-method=(GstVideoResamplerMethod)linear, \
    GstVideoConverter.matrix-mode=(GstVideoMatrixMode)none, \
    GstVideoConverter.gamma-mode=(GstVideoGammaMode)none, \
    GstVideoConverter.primaries-mode=(GstVideoPrimariesMode)none, \
    GstVideoConverter.chroma-mode=(GstVideoChromaMode)none\"";

#[cfg(test)]
mod tests {
    #[test]
    fn frames_are_read_from_identity_and_fpsdisplaysink_lines() {
        assert_eq!(
            super::frame_count(
                "/GstPipeline:pipeline0/GstIdentity:decoded_1: last-message = chain   ******* (x)"
            ),
            Some(("decoded_1".to_owned(), None))
        );
        assert_eq!(
            super::frame_count(
                "/GstPipeline:pipeline0/GstFPSDisplaySink:display: last-message = rendered: 95, \
                 dropped: 0, current: 29.94, average: 30.42"
            ),
            Some(("display".to_owned(), Some(95)))
        );
    }

    #[test]
    fn quoted_values_stay_one_word() {
        assert_eq!(
            super::words("a b=\"Sans 16\"  ! c"),
            vec!["a", "b=Sans 16", "!", "c"]
        );
    }
}
