//! Test doubles for hardware encoders: bins registered under hardware encoder names (as on a
//! box with VA-API or V4L2 M2M), one that passes frames through and one that refuses to start,
//! like a hardware element whose device is missing.

use std::sync::Once;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;

mod imp {
    use super::*;

    /// Passes frames through an `identity` between ghost pads.
    #[derive(Default)]
    pub struct WorkingEncoder;

    #[glib::object_subclass]
    impl ObjectSubclass for WorkingEncoder {
        const NAME: &'static str = "RoomdTestWorkingEncoder";
        type Type = super::WorkingEncoder;
        type ParentType = gst::Bin;
    }

    impl ObjectImpl for WorkingEncoder {
        fn constructed(&self) {
            self.parent_constructed();
            add_identity(self.obj().upcast_ref());
        }
    }
    impl GstObjectImpl for WorkingEncoder {}
    impl ElementImpl for WorkingEncoder {}
    impl BinImpl for WorkingEncoder {}

    /// Fails the step from READY to PAUSED, as hardware elements do when they cannot open
    /// their device.
    #[derive(Default)]
    pub struct FailingEncoder;

    #[glib::object_subclass]
    impl ObjectSubclass for FailingEncoder {
        const NAME: &'static str = "RoomdTestFailingEncoder";
        type Type = super::FailingEncoder;
        type ParentType = gst::Bin;
    }

    impl ObjectImpl for FailingEncoder {
        fn constructed(&self) {
            self.parent_constructed();
            add_identity(self.obj().upcast_ref());
        }
    }
    impl GstObjectImpl for FailingEncoder {}
    impl ElementImpl for FailingEncoder {
        fn change_state(
            &self,
            transition: gst::StateChange,
        ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
            if transition == gst::StateChange::ReadyToPaused {
                return Err(gst::StateChangeError);
            }
            self.parent_change_state(transition)
        }
    }
    impl BinImpl for FailingEncoder {}

    fn add_identity(bin: &gst::Bin) {
        let identity = gst::ElementFactory::make("identity").build().unwrap();
        bin.add(&identity).unwrap();
        for name in ["sink", "src"] {
            let target = identity.static_pad(name).unwrap();
            let ghost = gst::GhostPad::builder_with_target(&target)
                .unwrap()
                .name(name)
                .build();
            bin.add_pad(&ghost).unwrap();
        }
    }
}

glib::wrapper! {
    pub struct WorkingEncoder(ObjectSubclass<imp::WorkingEncoder>) @extends gst::Bin, gst::Element, gst::Object;
}

glib::wrapper! {
    pub struct FailingEncoder(ObjectSubclass<imp::FailingEncoder>) @extends gst::Bin, gst::Element, gst::Object;
}

/// Working fakes: `qsvh264enc` (rank NONE, like the real one), `v4l2h264enc` (PRIMARY + 1).
/// Failing fake: `vah264enc` (rank NONE).
pub(crate) fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        gst::init().unwrap();
        gst::Element::register(
            None,
            "qsvh264enc",
            gst::Rank::NONE,
            WorkingEncoder::static_type(),
        )
        .unwrap();
        gst::Element::register(
            None,
            "v4l2h264enc",
            gst::Rank::PRIMARY + 1,
            WorkingEncoder::static_type(),
        )
        .unwrap();
        gst::Element::register(
            None,
            "vah264enc",
            gst::Rank::NONE,
            FailingEncoder::static_type(),
        )
        .unwrap();
    });
}
