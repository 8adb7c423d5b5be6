//! Where each picture goes on the room display, for each layout, who the speaker layout shows
//! large, and the text drawn over the display. Pure functions, so that they can be tested
//! without pipelines.

use roomd_model::config::{Layout, SelfviewMode, SelfviewPosition};

use super::view::RoomView;

/// A rectangle on the display, in pixels from its top left corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width.
    pub width: i32,
    /// Height.
    pub height: i32,
}

/// The placement of every picture; `None` hides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scene {
    /// One entry per far-end picture, in the order they were given.
    pub remotes: Vec<Option<Rect>>,
    /// Shared content.
    pub content: Option<Rect>,
    /// The room's own camera.
    pub selfview: Option<Rect>,
}

/// Who the speaker layout shows large, from the far ends' voice activity. A peer reports
/// talking when its received level rises above a threshold and stops only after a hold time of
/// silence (see `webrtc::peer`); here the speaker keeps the place while they talk, someone who
/// talks while the speaker is silent takes it, and when nobody talks the last speaker stays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActiveSpeaker {
    current: Option<u64>,
    /// Who talks now, in the order they started.
    talking: Vec<u64>,
}

impl ActiveSpeaker {
    /// Picture `id` started (`true`) or stopped talking; may change the speaker.
    pub fn set_talking(&mut self, id: u64, talking: bool) {
        self.talking.retain(|t| *t != id);
        if talking {
            self.talking.push(id);
        }
        let speaker_talks = self.current.is_some_and(|c| self.talking.contains(&c));
        if !speaker_talks && let Some(first) = self.talking.first() {
            self.current = Some(*first);
        }
    }

    /// Picture `id` left the display.
    pub fn remove(&mut self, id: u64) {
        self.talking.retain(|t| *t != id);
        if self.current == Some(id) {
            self.current = self.talking.first().copied();
        }
    }

    /// The speaker's id; `None` until someone talked.
    pub fn current(&self) -> Option<u64> {
        self.current
    }
}

/// `speaker` is the index (among `remotes`) of who talks: the speaker layout shows them large;
/// without one, the first remote.
pub fn arrange(
    view: &RoomView,
    remotes: usize,
    speaker: Option<usize>,
    width: i32,
    height: i32,
) -> Scene {
    let mut scene = Scene {
        remotes: vec![None; remotes],
        content: None,
        selfview: None,
    };
    // Standby shows nothing but the standby screen; an unclaimed room shows its claim code.
    if view.standby || !view.claimed {
        return scene;
    }
    let full = Rect {
        x: 0,
        y: 0,
        width,
        height,
    };
    match view.layout {
        Layout::Presentation if view.content_active => {
            // Content large on the left, participants in a column on the right.
            let main_width = width * 3 / 4;
            scene.content = Some(Rect {
                width: main_width,
                ..full
            });
            let count = remotes.max(1) as i32;
            let side_width = width - main_width;
            let side_height = (height / count).min(side_width * 9 / 16);
            for (i, slot) in scene.remotes.iter_mut().enumerate() {
                *slot = Some(Rect {
                    x: main_width,
                    y: i as i32 * side_height,
                    width: side_width,
                    height: side_height,
                });
            }
        }
        Layout::Grid => {
            let count = remotes.max(1);
            let columns = (1..=count).find(|c| c * c >= count).unwrap_or(1) as i32;
            let rows = (count as i32 + columns - 1) / columns;
            let (cell_width, cell_height) = (width / columns, height / rows);
            for (i, slot) in scene.remotes.iter_mut().enumerate() {
                let i = i as i32;
                *slot = Some(Rect {
                    x: (i % columns) * cell_width,
                    y: (i / columns) * cell_height,
                    width: cell_width,
                    height: cell_height,
                });
            }
        }
        Layout::Single => {
            if let Some(first) = scene.remotes.first_mut() {
                *first = Some(full);
            }
        }
        // Speaker, and presentation while nothing is shared: the speaker large, the others as
        // a strip of thumbnails along the bottom.
        Layout::Speaker | Layout::Presentation => {
            let thumb_width = width / 5;
            let thumb_height = height / 5;
            let large = speaker.filter(|s| *s < remotes).unwrap_or(0);
            let mut thumbs = 0;
            for (i, slot) in scene.remotes.iter_mut().enumerate() {
                *slot = Some(if i == large {
                    full
                } else {
                    thumbs += 1;
                    Rect {
                        x: (thumbs - 1) * thumb_width,
                        y: height - thumb_height,
                        width: thumb_width,
                        height: thumb_height,
                    }
                });
            }
        }
    }
    if view.selfview == SelfviewMode::On {
        let (w, h) = (width / 4, height / 4);
        let margin = height / 30;
        let (x, y) = match view.selfview_position {
            SelfviewPosition::UpperLeft => (margin, margin),
            SelfviewPosition::UpperRight => (width - w - margin, margin),
            SelfviewPosition::LowerLeft => (margin, height - h - margin),
            SelfviewPosition::LowerRight => (width - w - margin, height - h - margin),
        };
        // Alone in the room (no far end, nothing shared), the room sees itself full screen.
        scene.selfview = Some(if remotes == 0 && scene.content.is_none() {
            full
        } else {
            Rect {
                x,
                y,
                width: w,
                height: h,
            }
        });
    }
    scene
}

/// Names longer than this are cut (with an ellipsis) where the display draws them.
pub const LABEL_MAX_CHARS: usize = 40;

/// A name as textoverlay must get it: its text is Pango markup, so a name is escaped (a name
/// such as `<span size="200000">` is drawn as typed, not obeyed), kept on one line and cut to
/// [`LABEL_MAX_CHARS`].
pub fn label_text(name: &str) -> String {
    let one_line: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let cut: String = if one_line.chars().count() > LABEL_MAX_CHARS {
        one_line
            .chars()
            .take(LABEL_MAX_CHARS - 1)
            .chain(std::iter::once('…'))
            .collect()
    } else {
        one_line
    };
    gstreamer::glib::markup_escape_text(&cut).to_string()
}

/// The text lines drawn over the display (Pango markup): indicators in a corner, and the
/// centre message.
pub fn indicators(view: &RoomView) -> String {
    let mut parts = vec![label_text(&view.name)];
    if view.muted {
        parts.push("MIC MUTED".to_owned());
    }
    if !view.camera_on {
        parts.push("CAMERA OFF".to_owned());
    }
    // ENCRYPTED only while status measured every stream of the meeting encrypted; outside a
    // meeting, the indicator says so rather than implying an unencrypted call.
    parts.push(
        match (view.in_meeting, view.encrypted) {
            (true, true) => "ENCRYPTED",
            (true, false) => "NOT ENCRYPTED",
            (false, _) => "NO CALL",
        }
        .to_owned(),
    );
    parts.join("  |  ")
}

/// The message in the middle of the display (snapshots included). `code` is the claim code
/// while the room is unclaimed, afterwards a touch panel's pairing code: while there is one,
/// the middle is left to [`code_message`].
pub fn centre_message(view: &RoomView, code: Option<&str>) -> String {
    match (view.claimed, code) {
        (_, Some(_)) => String::new(),
        (false, None) => "This room is not claimed yet".to_owned(),
        _ if view.standby => "Standby\nTouch the panel or start a call to wake".to_owned(),
        _ => String::new(),
    }
}

/// The code and what it is for, drawn on the screen only (never in snapshots).
pub fn code_message(view: &RoomView, code: Option<&str>) -> Option<String> {
    let code = code?;
    Some(if view.claimed {
        format!("Pair the touch panel with code\n{code}")
    } else {
        format!("Claim this room with code\n{code}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn awake() -> RoomView {
        RoomView {
            name: "Room".into(),
            claimed: true,
            volume: 50,
            muted: false,
            layout: Layout::Speaker,
            selfview: SelfviewMode::On,
            selfview_position: SelfviewPosition::LowerRight,
            camera_on: true,
            camera_position: roomd_model::config::CameraPosition::HOME,
            content_active: false,
            standby: false,
            in_meeting: false,
            encrypted: false,
        }
    }

    #[test]
    fn alone_the_room_sees_itself_full_screen() {
        let full = Some(Rect {
            x: 0,
            y: 0,
            width: 640,
            height: 360,
        });
        assert_eq!(arrange(&awake(), 0, None, 640, 360).selfview, full);
        assert_ne!(arrange(&awake(), 1, None, 640, 360).selfview, full);
    }

    #[test]
    fn speaker_fills_the_screen_with_the_first_remote() {
        let scene = arrange(&awake(), 3, None, 640, 360);
        assert_eq!(
            scene.remotes[0],
            Some(Rect {
                x: 0,
                y: 0,
                width: 640,
                height: 360
            })
        );
        assert_eq!(
            scene.remotes[1],
            Some(Rect {
                x: 0,
                y: 288,
                width: 128,
                height: 72
            })
        );
        assert_eq!(
            scene.selfview,
            Some(Rect {
                x: 468,
                y: 258,
                width: 160,
                height: 90
            })
        );
        assert_eq!(scene.content, None);
    }

    #[test]
    fn grid_presentation_single() {
        let mut view = RoomView {
            layout: Layout::Grid,
            ..awake()
        };
        let scene = arrange(&view, 3, None, 640, 360);
        assert_eq!(
            scene.remotes[2],
            Some(Rect {
                x: 0,
                y: 180,
                width: 320,
                height: 180
            })
        );
        view.layout = Layout::Presentation;
        view.content_active = true;
        let scene = arrange(&view, 2, None, 640, 360);
        assert_eq!(
            scene.content,
            Some(Rect {
                x: 0,
                y: 0,
                width: 480,
                height: 360
            })
        );
        assert_eq!(
            scene.remotes[1],
            Some(Rect {
                x: 480,
                y: 90,
                width: 160,
                height: 90
            })
        );
        view.layout = Layout::Single;
        let scene = arrange(&view, 2, None, 640, 360);
        assert_eq!(scene.remotes[1], None);
        assert_eq!(scene.content, None);
        view.selfview = SelfviewMode::Off;
        assert_eq!(arrange(&view, 2, None, 640, 360).selfview, None);
    }

    #[test]
    fn standby_and_unclaimed_show_no_pictures() {
        let view = RoomView {
            standby: true,
            ..awake()
        };
        let scene = arrange(&view, 2, None, 640, 360);
        assert_eq!(scene.remotes, vec![None, None]);
        assert_eq!(scene.selfview, None);
        assert!(centre_message(&view, None).starts_with("Standby"));
        let view = RoomView {
            claimed: false,
            ..awake()
        };
        assert_eq!(arrange(&view, 1, None, 640, 360).selfview, None);
        assert_eq!(centre_message(&view, Some("ABCD-EFGH")), "");
        assert_eq!(
            code_message(&view, Some("ABCD-EFGH")).as_deref(),
            Some("Claim this room with code\nABCD-EFGH")
        );
        // A claimed room shows a code only while a touch panel asks to be paired.
        assert_eq!(centre_message(&awake(), None), "");
        assert_eq!(code_message(&awake(), None), None);
        assert_eq!(centre_message(&awake(), Some("12345678")), "");
        assert_eq!(
            code_message(&awake(), Some("12345678")).as_deref(),
            Some("Pair the touch panel with code\n12345678")
        );
    }

    #[test]
    fn speaker_layout_enlarges_who_talks_and_holds_the_last_speaker() {
        let mut speaker = ActiveSpeaker::default();
        assert_eq!(speaker.current(), None);
        speaker.set_talking(7, true);
        assert_eq!(speaker.current(), Some(7));
        // Someone else starts while the speaker talks: the speaker keeps the place.
        speaker.set_talking(9, true);
        assert_eq!(speaker.current(), Some(7));
        // The speaker falls silent (after the peer's hold time): the other talker takes it.
        speaker.set_talking(7, false);
        assert_eq!(speaker.current(), Some(9));
        // Nobody talks: the last speaker stays.
        speaker.set_talking(9, false);
        assert_eq!(speaker.current(), Some(9));
        speaker.set_talking(7, true);
        assert_eq!(speaker.current(), Some(7));
        speaker.remove(7);
        assert_eq!(speaker.current(), None);

        // The third remote talks: it fills the screen, the others are thumbnails in order.
        let scene = arrange(&awake(), 3, Some(2), 640, 360);
        let full = Rect {
            x: 0,
            y: 0,
            width: 640,
            height: 360,
        };
        assert_eq!(scene.remotes[2], Some(full));
        assert_eq!(scene.remotes[0].map(|r| (r.x, r.width)), Some((0, 128)));
        assert_eq!(scene.remotes[1].map(|r| (r.x, r.width)), Some((128, 128)));
    }

    #[test]
    fn names_are_drawn_as_text_not_markup_and_cut() {
        assert_eq!(
            label_text("<span size=\"200000\">Eve</span> & co"),
            "&lt;span size=&quot;200000&quot;&gt;Eve&lt;/span&gt; &amp; co"
        );
        assert_eq!(label_text("two\nlines"), "two lines");
        let long = "x".repeat(200);
        let shown = label_text(&long);
        assert_eq!(shown.chars().count(), LABEL_MAX_CHARS);
        assert!(shown.ends_with('…'));
        let view = RoomView {
            name: "<b>Board</b>".into(),
            ..awake()
        };
        assert!(indicators(&view).starts_with("&lt;b&gt;Board&lt;/b&gt;  |"));
    }

    /// textoverlay really draws Pango markup: a name that asks for green text gets green
    /// pixels when passed as is, and none once it is [`label_text`].
    #[test]
    fn a_name_with_markup_is_drawn_as_plain_text() {
        let _serial = crate::tests::one_pipeline_test_at_a_time();
        use gstreamer as gst;
        use gstreamer::prelude::*;
        gst::init().unwrap();
        let green_pixels = |text: &str| -> usize {
            let pipeline = gst::parse::launch(
                "videotestsrc pattern=black num-buffers=1 ! video/x-raw,width=320,height=180 \
                 ! textoverlay name=label font-desc=\"Sans 20\" ! videoconvert \
                 ! video/x-raw,format=RGB ! appsink name=out sync=false",
            )
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
            pipeline
                .by_name("label")
                .unwrap()
                .set_property("text", text);
            let sink = pipeline
                .by_name("out")
                .unwrap()
                .downcast::<gstreamer_app::AppSink>()
                .unwrap();
            pipeline.set_state(gst::State::Playing).unwrap();
            let sample = sink.pull_sample().unwrap();
            pipeline.set_state(gst::State::Null).unwrap();
            let buffer = sample.buffer().unwrap().map_readable().unwrap();
            buffer
                .chunks_exact(3)
                .filter(|p| p[1] > 200 && p[0] < 80 && p[2] < 80)
                .count()
        };
        let name = "<span foreground=\"#00ff00\">WWWWWWWW</span>";
        assert!(green_pixels(name) > 50, "the control: markup is obeyed");
        assert_eq!(green_pixels(&label_text(name)), 0);
    }

    #[test]
    fn indicators_name_mute_and_camera() {
        let view = RoomView {
            muted: true,
            camera_on: false,
            ..awake()
        };
        assert_eq!(
            indicators(&view),
            "Room  |  MIC MUTED  |  CAMERA OFF  |  NO CALL"
        );
    }
}
