//! `roomdframeencrypt`: protects every encoded frame with the sender key.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::subclass::prelude::*;
use gstreamer_base as gst_base;

use crate::SenderKey;

glib::wrapper! {
    /// Encrypts encoded frames (SFrame) before the payloader.
    pub struct FrameEncrypt(ObjectSubclass<imp::FrameEncrypt>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

impl FrameEncrypt {
    /// A new element; it drops every frame until a key is set.
    pub fn new(name: &str) -> FrameEncrypt {
        glib::Object::builder().property("name", name).build()
    }

    /// Sets the sender key (a rekey: frames from now on use it), or None to stop sending.
    pub fn set_key(&self, key: Option<SenderKey>) {
        self.imp().set_key(key);
    }
}

mod imp {
    use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

    use gstreamer as gst;
    use gstreamer::glib;
    use gstreamer::prelude::*;
    use gstreamer::subclass::prelude::*;
    use gstreamer_base as gst_base;
    use gstreamer_base::subclass::prelude::*;

    use crate::{Codec, SenderKey, frame};

    static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
        gst::DebugCategory::new(
            "roomdframeencrypt",
            gst::DebugColorFlags::empty(),
            Some("roomd SFrame encryption"),
        )
    });

    #[derive(Default)]
    struct State {
        codec: Option<Codec>,
        key: Option<SenderKey>,
        protected: u64,
        dropped: u64,
    }

    #[derive(Default)]
    pub struct FrameEncrypt {
        state: Mutex<State>,
    }

    impl FrameEncrypt {
        fn state(&self) -> MutexGuard<'_, State> {
            // A panic elsewhere must not stop media; the state stays consistent per field.
            self.state.lock().unwrap_or_else(PoisonError::into_inner)
        }

        pub(super) fn set_key(&self, key: Option<SenderKey>) {
            let kid = key.as_ref().map(SenderKey::key_id);
            self.state().key = key;
            gst::info!(CAT, imp = self, "sender key id now {kid:?}");
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for FrameEncrypt {
        const NAME: &'static str = "RoomdFrameEncrypt";
        type Type = super::FrameEncrypt;
        type ParentType = gst_base::BaseTransform;
    }

    impl ObjectImpl for FrameEncrypt {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
                vec![
                    glib::ParamSpecUInt64::builder("frames-protected")
                        .nick("Frames protected")
                        .blurb("Frames encrypted and passed on")
                        .read_only()
                        .build(),
                    glib::ParamSpecUInt64::builder("frames-dropped")
                        .nick("Frames dropped")
                        .blurb("Frames dropped because no key was set or encryption failed")
                        .read_only()
                        .build(),
                    glib::ParamSpecUInt64::builder("key-id")
                        .nick("Key id")
                        .blurb("SFrame key id of the current sender key (0 when none)")
                        .read_only()
                        .build(),
                ]
            });
            PROPERTIES.as_ref()
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            let state = self.state();
            match pspec.name() {
                "frames-protected" => state.protected.to_value(),
                "frames-dropped" => state.dropped.to_value(),
                "key-id" => state.key.as_ref().map_or(0, SenderKey::key_id).to_value(),
                // GObject only asks for the properties listed above.
                _ => 0u64.to_value(),
            }
        }
    }

    impl GstObjectImpl for FrameEncrypt {}

    impl ElementImpl for FrameEncrypt {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "roomd frame encryption",
                    "Filter/Encoder/Crypto",
                    "Encrypts encoded frames with SFrame (RFC 9605), codec headers kept clear",
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

    impl BaseTransformImpl for FrameEncrypt {
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
            let mut state = self.state();
            let State { codec, key, .. } = &mut *state;
            let Some(codec) = *codec else {
                return Err(gst::FlowError::NotNegotiated);
            };
            let result = match key.as_mut() {
                None => Err(crate::E2eeError::NoSenderKey),
                Some(key) => {
                    let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                    frame::protect(codec, key, map.as_slice())
                }
            };
            match result {
                Ok(protected) => {
                    state.protected += 1;
                    drop(state);
                    buffer.replace_all_memory(gst::Memory::from_mut_slice(protected));
                    Ok(gst::FlowSuccess::Ok)
                }
                Err(e) => {
                    state.dropped += 1;
                    gst::debug!(CAT, imp = self, "frame dropped: {e}");
                    Ok(gst_base::BASE_TRANSFORM_FLOW_DROPPED)
                }
            }
        }
    }
}
