//! Where each picture goes on the room display, for each layout. Pure geometry, so that it can
//! be tested without pipelines.

use crate::config::{Layout, SelfviewMode, SelfviewPosition};

use super::view::RoomView;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
}

/// The placement of every picture; `None` hides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scene {
    pub remotes: Vec<Option<Rect>>,
    pub content: Option<Rect>,
    pub selfview: Option<Rect>,
}

pub fn arrange(view: &RoomView, remotes: usize, width: i32, height: i32) -> Scene {
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
            for (i, slot) in scene.remotes.iter_mut().enumerate() {
                *slot = Some(if i == 0 {
                    full
                } else {
                    Rect {
                        x: (i as i32 - 1) * thumb_width,
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

/// The text lines drawn over the display: indicators in a corner, and the centre message.
pub fn indicators(view: &RoomView) -> String {
    let mut parts = vec![view.name.clone()];
    if view.muted {
        parts.push("MIC MUTED".to_owned());
    }
    if !view.camera_on {
        parts.push("CAMERA OFF".to_owned());
    }
    // Meetings are always DTLS-SRTP (peers refuse anything else); outside one, the indicator
    // says so rather than implying an unencrypted call.
    parts.push(
        if view.in_meeting {
            "ENCRYPTED"
        } else {
            "NO CALL"
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
            camera_position: crate::config::CameraPosition::HOME,
            content_active: false,
            standby: false,
            in_meeting: false,
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
        assert_eq!(arrange(&awake(), 0, 640, 360).selfview, full);
        assert_ne!(arrange(&awake(), 1, 640, 360).selfview, full);
    }

    #[test]
    fn speaker_fills_the_screen_with_the_first_remote() {
        let scene = arrange(&awake(), 3, 640, 360);
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
        let scene = arrange(&view, 3, 640, 360);
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
        let scene = arrange(&view, 2, 640, 360);
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
        let scene = arrange(&view, 2, 640, 360);
        assert_eq!(scene.remotes[1], None);
        assert_eq!(scene.content, None);
        view.selfview = SelfviewMode::Off;
        assert_eq!(arrange(&view, 2, 640, 360).selfview, None);
    }

    #[test]
    fn standby_and_unclaimed_show_no_pictures() {
        let view = RoomView {
            standby: true,
            ..awake()
        };
        let scene = arrange(&view, 2, 640, 360);
        assert_eq!(scene.remotes, vec![None, None]);
        assert_eq!(scene.selfview, None);
        assert!(centre_message(&view, None).starts_with("Standby"));
        let view = RoomView {
            claimed: false,
            ..awake()
        };
        assert_eq!(arrange(&view, 1, 640, 360).selfview, None);
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
