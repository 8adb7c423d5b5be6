//! `roomdframedecrypt`: opens every received frame with the key its key id names; drops the rest.
//!
//! A video frame that opens after frames were dropped refers to pictures the decoder never got
//! (the sender's key arrived after its key frame, or after a rekey): the element asks upstream
//! for a key frame (a force-key-unit event, which the RTP session sends as PLI/FIR), and again
//! every [`KEYFRAME_REQUEST_EVERY`] opened frames until a key frame opens.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::subclass::prelude::*;
use gstreamer_base as gst_base;

use crate::{E2eeError, KeySecret};

glib::wrapper! {
    /// Decrypts received frames (SFrame) after the depayloader.
    pub struct FrameDecrypt(ObjectSubclass<imp::FrameDecrypt>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

impl FrameDecrypt {
    /// A new element; it drops every frame until it holds the key the frame names.
    pub fn new(name: &str) -> FrameDecrypt {
        glib::Object::builder().property("name", name).build()
    }

    /// Accepts frames under key `key_id` from now on (a sender joined or rekeyed).
    pub fn insert_key(&self, key_id: u64, secret: &KeySecret) -> Result<(), E2eeError> {
        self.imp().keys().insert(key_id, secret)
    }

    /// Refuses frames under key `key_id` from now on (its sender left or rekeyed); true if the
    /// key was held.
    pub fn remove_key(&self, key_id: u64) -> bool {
        self.imp().keys().remove(key_id)
    }
}

/// Opened delta frames between two key frame requests while the decoder waits for a key frame.
pub(crate) const KEYFRAME_REQUEST_EVERY: u64 = 30;

mod imp {
    use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

    use gstreamer as gst;
    use gstreamer::glib;
    use gstreamer::prelude::*;
    use gstreamer::subclass::prelude::*;
    use gstreamer_base as gst_base;
    use gstreamer_base::prelude::BaseTransformExtManual;
    use gstreamer_base::subclass::prelude::*;

    use super::KEYFRAME_REQUEST_EVERY;
    use crate::h264;
    use crate::{Codec, ReceiverKeys, frame};

    static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
        gst::DebugCategory::new(
            "roomdframedecrypt",
            gst::DebugColorFlags::empty(),
            Some("roomd SFrame decryption"),
        )
    });

    #[derive(Default)]
    struct State {
        codec: Option<Codec>,
        opened: u64,
        refused: u64,
        last_error: String,
        /// Video frames were dropped since the last key frame that opened: opened delta
        /// frames since then (the next request goes out at 0 and every
        /// [`KEYFRAME_REQUEST_EVERY`]).
        awaiting_keyframe: Option<u64>,
        /// Key frame requests sent upstream.
        keyframe_requests: u64,
    }

    #[derive(Default)]
    pub struct FrameDecrypt {
        state: Mutex<State>,
        // Apart from the counters: keys change from the meeting's task while frames stream.
        keys: Mutex<ReceiverKeys>,
    }

    impl FrameDecrypt {
        fn state(&self) -> MutexGuard<'_, State> {
            // A panic elsewhere must not stop media; the state stays consistent per field.
            self.state.lock().unwrap_or_else(PoisonError::into_inner)
        }

        pub(super) fn keys(&self) -> MutexGuard<'_, ReceiverKeys> {
            self.keys.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    /// Whether an opened frame is a key frame: H.264, an access unit with an IDR slice; VP8,
    /// the frame tag's inverse key frame bit clear. (Depayloaders' delta flags are not relied
    /// on.)
    fn is_keyframe(codec: Codec, frame: &[u8]) -> bool {
        match codec {
            Codec::H264 => h264::nal_units(frame).is_ok_and(|units| {
                units
                    .iter()
                    .any(|u| u.first().is_some_and(|b| b & 0x1f == 5))
            }),
            Codec::Vp8 => frame.first().is_some_and(|b| b & 1 == 0),
            Codec::Opus => true,
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for FrameDecrypt {
        const NAME: &'static str = "RoomdFrameDecrypt";
        type Type = super::FrameDecrypt;
        type ParentType = gst_base::BaseTransform;
    }

    impl ObjectImpl for FrameDecrypt {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
                vec![
                    glib::ParamSpecUInt64::builder("frames-opened")
                        .nick("Frames opened")
                        .blurb("Frames decrypted and passed on")
                        .read_only()
                        .build(),
                    glib::ParamSpecUInt64::builder("frames-refused")
                        .nick("Frames refused")
                        .blurb("Frames dropped: no key for them, a wrong key, tampered or not encrypted")
                        .read_only()
                        .build(),
                    glib::ParamSpecUInt64::builder("keyframe-requests")
                        .nick("Key frame requests")
                        .blurb("Key frames asked for upstream after dropped frames")
                        .read_only()
                        .build(),
                    glib::ParamSpecString::builder("last-error")
                        .nick("Last error")
                        .blurb("Why the last refused frame was refused")
                        .read_only()
                        .build(),
                ]
            });
            PROPERTIES.as_ref()
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            let state = self.state();
            match pspec.name() {
                "frames-opened" => state.opened.to_value(),
                "frames-refused" => state.refused.to_value(),
                "keyframe-requests" => state.keyframe_requests.to_value(),
                "last-error" => state.last_error.to_value(),
                // GObject only asks for the properties listed above.
                _ => 0u64.to_value(),
            }
        }
    }

    impl GstObjectImpl for FrameDecrypt {}

    impl ElementImpl for FrameDecrypt {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "roomd frame decryption",
                    "Filter/Decoder/Crypto",
                    "Decrypts SFrame (RFC 9605) frames; drops what does not open",
                    "roomd",
                )
            });
            Some(&*METADATA)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> =
                LazyLock::new(crate::element::frame_pad_templates);
            TEMPLATES.as_ref()
        }
    }

    impl BaseTransformImpl for FrameDecrypt {
        const MODE: gst_base::subclass::BaseTransformMode =
            gst_base::subclass::BaseTransformMode::AlwaysInPlace;
        const PASSTHROUGH_ON_SAME_CAPS: bool = false;
        const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

        fn set_caps(
            &self,
            incaps: &gst::Caps,
            _outcaps: &gst::Caps,
        ) -> Result<(), gst::LoggableError> {
            let codec = crate::element::codec_of(incaps).ok_or_else(|| {
                gst::loggable_error!(CAT, "caps {incaps} are not a protected codec")
            })?;
            self.state().codec = Some(codec);
            Ok(())
        }

        fn transform_ip(
            &self,
            buffer: &mut gst::BufferRef,
        ) -> Result<gst::FlowSuccess, gst::FlowError> {
            let Some(codec) = self.state().codec else {
                return Err(gst::FlowError::NotNegotiated);
            };
            let result = {
                let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                frame::open(codec, &self.keys(), map.as_slice())
            };
            let video = codec != Codec::Opus;
            let mut state = self.state();
            match result {
                Ok(opened) => {
                    state.opened += 1;
                    let request = match state.awaiting_keyframe {
                        Some(_) if is_keyframe(codec, &opened) => {
                            state.awaiting_keyframe = None;
                            false
                        }
                        Some(delta) => {
                            state.awaiting_keyframe = Some(delta + 1);
                            delta % KEYFRAME_REQUEST_EVERY == 0
                        }
                        None => false,
                    };
                    if request {
                        state.keyframe_requests += 1;
                    }
                    drop(state);
                    buffer.replace_all_memory(gst::Memory::from_mut_slice(opened));
                    if request {
                        gst::debug!(CAT, imp = self, "asking for a key frame");
                        let event = gstreamer_video::UpstreamForceKeyUnitEvent::builder()
                            .all_headers(true)
                            .build();
                        self.obj().sink_pad().push_event(event);
                    }
                    Ok(gst::FlowSuccess::Ok)
                }
                Err(e) => {
                    state.refused += 1;
                    if video && state.awaiting_keyframe.is_none() {
                        state.awaiting_keyframe = Some(0);
                    }
                    let reason = e.to_string();
                    if state.last_error != reason {
                        gst::debug!(CAT, imp = self, "frame refused: {reason}");
                        state.last_error = reason;
                    }
                    Ok(gst_base::BASE_TRANSFORM_FLOW_DROPPED)
                }
            }
        }
    }
}
