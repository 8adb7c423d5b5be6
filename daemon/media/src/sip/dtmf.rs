//! RFC 4733 telephone events (DTMF) in a SIP call's audio: a conference PIN typed into a
//! bridge's voice menu.

use gstreamer as gst;
use gstreamer::prelude::*;

use super::static_pad;
use crate::MediaError;

/// Most `meeting.dtmf` commands waiting for their tones to be played.
const DTMF_QUEUE: usize = 16;

/// One thread per call plays the queued tones in order, so that two commands in quick
/// succession cannot interleave their digits; it ends when the call's media is dropped.
pub(super) fn dtmf_player(
    source: &gst::Element,
) -> Result<std::sync::mpsc::SyncSender<Vec<i32>>, MediaError> {
    // The events go to the source's pad as if from downstream (an element's send_event hands
    // upstream events to its sink pads, and a source has none).
    let pad = static_pad(source, "src")?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<i32>>(DTMF_QUEUE);
    std::thread::Builder::new()
        .name("sip-dtmf".into())
        .spawn(move || {
            for numbers in rx {
                for number in numbers {
                    for start in [true, false] {
                        let mut event = gst::Structure::builder("dtmf-event")
                            .field("type", 1i32)
                            .field("number", number)
                            .field("start", start);
                        if start {
                            event = event.field("volume", 25i32);
                        }
                        if !pad.send_event(gst::event::CustomUpstream::new(event.build())) {
                            tracing::warn!("SIP call: the DTMF source refused a tone event");
                        }
                        std::thread::sleep(std::time::Duration::from_millis(if start {
                            200
                        } else {
                            100
                        }));
                    }
                }
            }
        })
        .map_err(|e| MediaError::Start(format!("SIP call's DTMF thread: {e}")))?;
    Ok(tx)
}

/// The RFC 4733 event number of a DTMF digit.
pub(super) fn dtmf_number(digit: u8) -> Option<i32> {
    match digit {
        b'0'..=b'9' => Some(i32::from(digit - b'0')),
        b'*' => Some(10),
        b'#' => Some(11),
        b'A'..=b'D' => Some(i32::from(digit - b'A') + 12),
        _ => None,
    }
}
