//! Room commands: what people and programs ask the room to do.
//!
//! `POST /api/v1/commands/{name}` bodies are parsed here into a typed [`RoomCommand`]; the API
//! only routes and authorises. Argument structs reject unknown fields so that a typo is an error
//! rather than a silently ignored request.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::meeting::MeetingTarget;
use roomd_model::config::{
    CameraPosition, Layout, SelfviewMode, SelfviewPosition, check_camera_position,
    check_camera_preset_name,
};

/// A request to change the room, as the core understands it.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomCommand {
    /// `audio.volume.set`: sets the speaker volume.
    SetVolume {
        /// 0..=100.
        level: u8,
    },
    /// `audio.microphones.mute` and `audio.microphones.unmute`.
    SetMicrophonesMuted {
        /// Whether the microphones are to be muted.
        muted: bool,
    },
    /// `video.layout.set`: arranges the main display.
    SetLayout {
        /// The new layout.
        layout: Layout,
    },
    /// `video.selfview.set`: shows or hides the self-view picture.
    SetSelfview {
        /// Shown or hidden.
        mode: SelfviewMode,
        /// The corner to move it to; None keeps the current one.
        position: Option<SelfviewPosition>,
    },
    /// `standby.activate`: enters standby at once.
    ActivateStandby,
    /// `standby.deactivate`: leaves standby (as any other command does too).
    DeactivateStandby,
    /// `video.camera.on` and `video.camera.off`.
    SetCameraEnabled {
        /// Whether the camera is to be on.
        enabled: bool,
    },
    /// `video.content.start` and `video.content.stop`: shares the content input or stops.
    SetContentSharing {
        /// Whether content is to be shared.
        active: bool,
    },
    /// Moves the camera; what is left out stays.
    SetCameraPosition {
        /// See [`CameraPosition::pan`]; checked to be in range.
        pan: Option<i8>,
        /// See [`CameraPosition::tilt`]; checked to be in range.
        tilt: Option<i8>,
        /// See [`CameraPosition::zoom`]; checked to be in range.
        zoom: Option<u16>,
    },
    /// `video.camera.preset.save`: saves the camera's current position in the configuration,
    /// over a preset of the same name if there is one; refused when the list is full.
    SaveCameraPreset {
        /// A valid preset name (1 to 32 lowercase letters, digits and `-`).
        name: String,
    },
    /// `video.camera.preset.recall`: moves the camera to a saved preset; refused if there is
    /// none of that name.
    RecallCameraPreset {
        /// A valid preset name.
        name: String,
    },
    /// `meeting.join`: joins or hosts a meeting; refused while the room is in one.
    JoinMeeting {
        /// What to join or host, checked.
        target: Box<MeetingTarget>,
    },
    /// `meeting.leave`: leaves the meeting (or ends the hosted one) and writes the call
    /// history.
    LeaveMeeting,
    /// Lets a guest in from the lobby of a hosted meeting.
    AdmitParticipant {
        /// The guest's participant id, from `status.meeting.participants`.
        id: String,
    },
    /// `meeting.remove`: removes a participant from the meeting; refused if there is none of
    /// that id.
    RemoveParticipant {
        /// The participant id, from `status.meeting.participants`.
        id: String,
    },
    /// `meeting.moderator.grant` / `meeting.moderator.revoke`: makes a guest of the meeting
    /// the room hosts a moderator, or takes that back (docs/meetings.md, "Roles").
    SetModerator {
        /// The guest's participant id.
        id: String,
        /// True to grant, false to take back.
        moderator: bool,
    },
    /// `meeting.presenter.set` / `meeting.presenter.clear`: the one guest who may share a
    /// window, or none.
    SetPresenter {
        /// The guest's participant id; `None`: no guest may share.
        id: Option<String>,
    },
    /// `meeting.lock` / `meeting.unlock`: whether anyone new may arrive at the hosted meeting.
    LockMeeting {
        /// True to lock.
        locked: bool,
    },
    /// `meeting.ask_mute`: asks a guest to switch their microphone off (their page shows the
    /// request; nobody is muted from afar).
    AskToMute {
        /// The guest's participant id.
        id: String,
    },
    /// `meeting.dtmf`: sends DTMF tones (RFC 4733) into the current SIP call, e.g. a bridge's
    /// conference PIN.
    SendDtmf {
        /// 1 to 32 of `0-9`, `*`, `#`, `A-D`.
        digits: String,
    },
    /// `meeting.chat.send`: the room writes in the chat of the meeting it hosts.
    SendChat {
        /// 1 to 500 characters (see `chat_text_is_valid`).
        text: String,
    },
    /// `meeting.answer`: answers the SIP call that rings (`status.sip.incoming`); the call
    /// becomes the meeting.
    AnswerCall,
    /// `meeting.decline`: declines the SIP call that rings (603 Decline to the caller).
    DeclineCall,
    /// `meeting.hold` / `meeting.resume`: holds the connected SIP call (re-INVITE with
    /// `a=sendonly`) or resumes it (`a=sendrecv`).
    HoldCall {
        /// True to hold, false to resume.
        hold: bool,
    },
    /// `meeting.e2ee_confirm`: the people in the room read the short authentication string
    /// (`status.meeting.e2ee.participants[].sas`) with that participant and it matched. The
    /// participant is verified once they confirmed it too.
    ConfirmSas {
        /// The participant id, from `status.meeting.e2ee.participants`.
        id: String,
        /// Who confirmed, shown in status; the API fills it in from the caller's principal.
        by: String,
    },
    /// `update.reboot`: reboots into an installed firmware update; refused unless one waits.
    RebootForUpdate,
    /// `system.factory_reset`: writes the factory-reset marker into the state directory; roomd
    /// then restarts itself and wipes accounts, configuration and data (keeping the device key
    /// and the security floor) before it opens anything.
    FactoryReset {
        /// Who asked, for the marker and the log line after the wipe. The API fills it in from
        /// the caller's principal; parsing leaves it empty (the arguments carry no name).
        by: String,
    },
    /// `system.reboot`: reboots the box through logind (admin only).
    Reboot {
        /// Who asked, for the event; the API fills it in from the caller's principal.
        by: String,
    },
    /// `system.power_off`: powers the box off through logind (admin only).
    PowerOff {
        /// Who asked, for the event; the API fills it in from the caller's principal.
        by: String,
    },
}

impl RoomCommand {
    /// The field naming who asked, for the commands that record it (filled in by the API and
    /// the D-Bus interface from the caller).
    pub fn requester_mut(&mut self) -> Option<&mut String> {
        match self {
            RoomCommand::FactoryReset { by }
            | RoomCommand::ConfirmSas { by, .. }
            | RoomCommand::Reboot { by }
            | RoomCommand::PowerOff { by } => Some(by),
            _ => None,
        }
    }
}

/// A command's name and an example of its arguments (documented in `openapi.json`).
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    /// Dotted name, as in `POST /api/v1/commands/{name}`.
    pub name: &'static str,
    /// Example arguments, a JSON object as text.
    pub example: &'static str,
    /// Turns the arguments into the command; an entry cannot be listed without one.
    parse: Parser,
}

/// A command's parser: its name (for error messages) and its JSON arguments.
type Parser = fn(&'static str, &Value) -> Result<RoomCommand, CommandError>;

/// Every command the room accepts. All of them need the `RoomControl` permission today.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "audio.volume.set",
        example: r#"{"level": 60}"#,
        parse: parse_volume,
    },
    CommandSpec {
        name: "audio.microphones.mute",
        example: "{}",
        parse: parse_mute,
    },
    CommandSpec {
        name: "audio.microphones.unmute",
        example: "{}",
        parse: parse_mute,
    },
    CommandSpec {
        name: "video.layout.set",
        example: r#"{"layout": "grid"}"#,
        parse: parse_layout,
    },
    CommandSpec {
        name: "video.selfview.set",
        example: r#"{"mode": "on", "position": "upper-left"}"#,
        parse: parse_selfview,
    },
    CommandSpec {
        name: "standby.activate",
        example: "{}",
        parse: parse_standby,
    },
    CommandSpec {
        name: "standby.deactivate",
        example: "{}",
        parse: parse_standby,
    },
    CommandSpec {
        name: "video.camera.on",
        example: "{}",
        parse: parse_camera_enabled,
    },
    CommandSpec {
        name: "video.camera.off",
        example: "{}",
        parse: parse_camera_enabled,
    },
    CommandSpec {
        name: "video.camera.position.set",
        example: r#"{"pan": -30, "tilt": 10, "zoom": 150}"#,
        parse: parse_camera_position,
    },
    CommandSpec {
        name: "video.camera.preset.save",
        example: r#"{"name": "table"}"#,
        parse: parse_camera_preset,
    },
    CommandSpec {
        name: "video.camera.preset.recall",
        example: r#"{"name": "table"}"#,
        parse: parse_camera_preset,
    },
    CommandSpec {
        name: "video.content.start",
        example: "{}",
        parse: parse_content,
    },
    CommandSpec {
        name: "video.content.stop",
        example: "{}",
        parse: parse_content,
    },
    CommandSpec {
        name: "meeting.join",
        example: r#"{"target": {"kind": "janus", "server": "https://janus.example.org:8089/janus", "room": 1234, "pin": "room-pin"}}"#,
        parse: parse_join,
    },
    CommandSpec {
        name: "meeting.leave",
        example: "{}",
        parse: parse_leave,
    },
    CommandSpec {
        name: "meeting.admit",
        example: r#"{"participant": "g-7QK3M9TX"}"#,
        parse: parse_participant,
    },
    CommandSpec {
        name: "meeting.remove",
        example: r#"{"participant": "g-7QK3M9TX"}"#,
        parse: parse_participant,
    },
    CommandSpec {
        name: "meeting.moderator.grant",
        example: r#"{"participant": "g-7QK3M9TX"}"#,
        parse: parse_grant_moderator,
    },
    CommandSpec {
        name: "meeting.moderator.revoke",
        example: r#"{"participant": "g-7QK3M9TX"}"#,
        parse: parse_revoke_moderator,
    },
    CommandSpec {
        name: "meeting.presenter.set",
        example: r#"{"participant": "g-7QK3M9TX"}"#,
        parse: parse_set_presenter,
    },
    CommandSpec {
        name: "meeting.presenter.clear",
        example: "{}",
        parse: parse_clear_presenter,
    },
    CommandSpec {
        name: "meeting.lock",
        example: "{}",
        parse: parse_lock,
    },
    CommandSpec {
        name: "meeting.unlock",
        example: "{}",
        parse: parse_unlock,
    },
    CommandSpec {
        name: "meeting.ask_mute",
        example: r#"{"participant": "g-7QK3M9TX"}"#,
        parse: parse_ask_mute,
    },
    CommandSpec {
        name: "meeting.chat.send",
        example: r#"{"text": "The dial-in number is on the slide."}"#,
        parse: parse_chat,
    },
    CommandSpec {
        name: "meeting.dtmf",
        example: r#"{"digits": "1234#"}"#,
        parse: parse_dtmf,
    },
    CommandSpec {
        name: "meeting.answer",
        example: "{}",
        parse: parse_incoming,
    },
    CommandSpec {
        name: "meeting.decline",
        example: "{}",
        parse: parse_incoming,
    },
    CommandSpec {
        name: "meeting.hold",
        example: "{}",
        parse: parse_hold,
    },
    CommandSpec {
        name: "meeting.resume",
        example: "{}",
        parse: parse_hold,
    },
    CommandSpec {
        name: "meeting.e2ee_confirm",
        example: r#"{"participant": "j-4711"}"#,
        parse: parse_sas_confirmation,
    },
    CommandSpec {
        name: "update.reboot",
        example: "{}",
        parse: parse_update_reboot,
    },
    CommandSpec {
        name: "system.factory_reset",
        example: r#"{"confirm": "yes"}"#,
        parse: parse_factory_reset,
    },
    CommandSpec {
        name: "system.reboot",
        example: "{}",
        parse: parse_power,
    },
    CommandSpec {
        name: "system.power_off",
        example: "{}",
        parse: parse_power,
    },
];

/// Why [`RoomCommand::parse`] refused a request.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CommandError {
    /// No command has this name.
    #[error("unknown command {name:?}; known commands: {}", known_names())]
    Unknown {
        /// The name given, cut to 64 characters.
        name: String,
    },
    /// The arguments do not fit the command (unknown field, wrong type, out of range).
    #[error("{command}: {message}")]
    InvalidArguments {
        /// The command's name.
        command: &'static str,
        /// What is wrong, naming the argument.
        message: String,
    },
}

fn known_names() -> String {
    COMMANDS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VolumeArgs {
    level: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PositionArgs {
    pan: Option<i8>,
    tilt: Option<i8>,
    zoom: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetArgs {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinArgs {
    target: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParticipantArgs {
    participant: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutArgs {
    layout: Layout,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SelfviewArgs {
    mode: SelfviewMode,
    #[serde(default)]
    position: Option<SelfviewPosition>,
}

impl RoomCommand {
    /// Parses a command by name from its JSON arguments.
    pub fn parse(name: &str, args: &Value) -> Result<RoomCommand, CommandError> {
        let spec =
            COMMANDS
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| CommandError::Unknown {
                    name: truncate(name),
                })?;
        (spec.parse)(spec.name, args)
    }
}

fn invalid(command: &'static str, message: impl Into<String>) -> CommandError {
    CommandError::InvalidArguments {
        command,
        message: message.into(),
    }
}

fn parse_volume(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let a: VolumeArgs = args_of(command, args)?;
    if a.level > 100 {
        return Err(invalid(
            command,
            format!("level: {} is out of range 0..=100", a.level),
        ));
    }
    Ok(RoomCommand::SetVolume { level: a.level })
}

fn parse_mute(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let NoArgs {} = args_of(command, args)?;
    Ok(RoomCommand::SetMicrophonesMuted {
        muted: command.ends_with(".mute"),
    })
}

fn parse_layout(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let a: LayoutArgs = args_of(command, args)?;
    Ok(RoomCommand::SetLayout { layout: a.layout })
}

fn parse_selfview(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let a: SelfviewArgs = args_of(command, args)?;
    Ok(RoomCommand::SetSelfview {
        mode: a.mode,
        position: a.position,
    })
}

fn parse_standby(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let NoArgs {} = args_of(command, args)?;
    Ok(if command.ends_with(".activate") {
        RoomCommand::ActivateStandby
    } else {
        RoomCommand::DeactivateStandby
    })
}

fn parse_camera_enabled(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let NoArgs {} = args_of(command, args)?;
    Ok(RoomCommand::SetCameraEnabled {
        enabled: command.ends_with(".on"),
    })
}

fn parse_camera_position(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let a: PositionArgs = args_of(command, args)?;
    let probe = CameraPosition {
        pan: a.pan.unwrap_or(0),
        tilt: a.tilt.unwrap_or(0),
        zoom: a.zoom.unwrap_or(100),
    };
    check_camera_position(probe).map_err(|message| invalid(command, message))?;
    if a.pan.is_none() && a.tilt.is_none() && a.zoom.is_none() {
        return Err(invalid(command, "give at least one of pan, tilt, zoom"));
    }
    Ok(RoomCommand::SetCameraPosition {
        pan: a.pan,
        tilt: a.tilt,
        zoom: a.zoom,
    })
}

fn parse_camera_preset(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let a: PresetArgs = args_of(command, args)?;
    check_camera_preset_name(&a.name).map_err(|message| invalid(command, message))?;
    Ok(if command.ends_with(".save") {
        RoomCommand::SaveCameraPreset { name: a.name }
    } else {
        RoomCommand::RecallCameraPreset { name: a.name }
    })
}

fn parse_content(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let NoArgs {} = args_of(command, args)?;
    Ok(RoomCommand::SetContentSharing {
        active: command.ends_with(".start"),
    })
}

fn parse_join(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let a: JoinArgs = args_of(command, args)?;
    let target = MeetingTarget::parse(&a.target)
        .map_err(|message| invalid(command, format!("target: {message}")))?;
    Ok(RoomCommand::JoinMeeting {
        target: Box::new(target),
    })
}

fn parse_leave(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let NoArgs {} = args_of(command, args)?;
    Ok(RoomCommand::LeaveMeeting)
}

fn parse_participant(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let a: ParticipantArgs = args_of(command, args)?;
    if a.participant.is_empty() || a.participant.len() > 64 {
        return Err(invalid(
            command,
            "participant: give a participant id from status.meeting.participants",
        ));
    }
    Ok(if command.ends_with(".admit") {
        RoomCommand::AdmitParticipant { id: a.participant }
    } else {
        RoomCommand::RemoveParticipant { id: a.participant }
    })
}

/// The participant id of a command's arguments, checked for form (the core checks who it is).
fn participant_of(command: &'static str, args: &Value) -> Result<String, CommandError> {
    let a: ParticipantArgs = args_of(command, args)?;
    if a.participant.is_empty() || a.participant.len() > 64 {
        return Err(invalid(
            command,
            "participant: give a participant id from status.meeting.participants",
        ));
    }
    Ok(a.participant)
}

fn parse_grant_moderator(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    Ok(RoomCommand::SetModerator {
        id: participant_of(command, args)?,
        moderator: true,
    })
}

fn parse_revoke_moderator(
    command: &'static str,
    args: &Value,
) -> Result<RoomCommand, CommandError> {
    Ok(RoomCommand::SetModerator {
        id: participant_of(command, args)?,
        moderator: false,
    })
}

fn parse_set_presenter(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    Ok(RoomCommand::SetPresenter {
        id: Some(participant_of(command, args)?),
    })
}

fn parse_clear_presenter(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let NoArgs {} = args_of(command, args)?;
    Ok(RoomCommand::SetPresenter { id: None })
}

fn parse_lock(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let NoArgs {} = args_of(command, args)?;
    Ok(RoomCommand::LockMeeting { locked: true })
}

fn parse_unlock(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let NoArgs {} = args_of(command, args)?;
    Ok(RoomCommand::LockMeeting { locked: false })
}

fn parse_ask_mute(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    Ok(RoomCommand::AskToMute {
        id: participant_of(command, args)?,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DtmfArgs {
    digits: String,
}

/// Most tones one `meeting.dtmf` sends.
const DTMF_MAX_DIGITS: usize = 32;

fn parse_dtmf(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let a: DtmfArgs = args_of(command, args)?;
    let valid = (1..=DTMF_MAX_DIGITS).contains(&a.digits.len())
        && a.digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'*' | b'#' | b'A'..=b'D'));
    if !valid {
        return Err(invalid(command, "digits: 1 to 32 of 0-9, *, # and A-D"));
    }
    Ok(RoomCommand::SendDtmf { digits: a.digits })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatArgs {
    text: String,
}

fn parse_chat(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let a: ChatArgs = args_of(command, args)?;
    if !crate::meeting::chat_text_is_valid(&a.text) {
        return Err(invalid(
            command,
            "text: 1 to 500 characters, not only spaces, no control characters but line breaks",
        ));
    }
    Ok(RoomCommand::SendChat { text: a.text })
}

fn parse_incoming(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let NoArgs {} = args_of(command, args)?;
    Ok(if command.ends_with(".answer") {
        RoomCommand::AnswerCall
    } else {
        RoomCommand::DeclineCall
    })
}

fn parse_hold(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let NoArgs {} = args_of(command, args)?;
    Ok(RoomCommand::HoldCall {
        hold: command.ends_with(".hold"),
    })
}

fn parse_sas_confirmation(
    command: &'static str,
    args: &Value,
) -> Result<RoomCommand, CommandError> {
    let a: ParticipantArgs = args_of(command, args)?;
    if a.participant.is_empty() || a.participant.len() > 64 {
        return Err(invalid(
            command,
            "participant: give a participant id from status.meeting.e2ee.participants",
        ));
    }
    Ok(RoomCommand::ConfirmSas {
        id: a.participant,
        by: String::new(),
    })
}

fn parse_update_reboot(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let NoArgs {} = args_of(command, args)?;
    Ok(RoomCommand::RebootForUpdate)
}

fn parse_power(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let NoArgs {} = args_of(command, args)?;
    let by = String::new();
    Ok(if command == "system.power_off" {
        RoomCommand::PowerOff { by }
    } else {
        RoomCommand::Reboot { by }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmArgs {
    confirm: String,
}

/// What `system.factory_reset` needs as `confirm`: erasing the device is never what an empty
/// body, a script's slip or an API fuzzer meant (RoomOS asks the same, `Confirm: Yes`).
const FACTORY_RESET_CONFIRMATION: &str = "yes";

fn parse_factory_reset(command: &'static str, args: &Value) -> Result<RoomCommand, CommandError> {
    let a: ConfirmArgs = args_of(command, args)?;
    if a.confirm != FACTORY_RESET_CONFIRMATION {
        return Err(invalid(
            command,
            "confirm: must be \"yes\"; this erases every account, the configuration and all \
             data, and leaves the device unclaimed",
        ));
    }
    Ok(RoomCommand::FactoryReset { by: String::new() })
}

fn args_of<T: DeserializeOwned>(command: &'static str, args: &Value) -> Result<T, CommandError> {
    if !args.is_object() {
        return Err(CommandError::InvalidArguments {
            command,
            message: "arguments must be a JSON object (use {} when there are none)".into(),
        });
    }
    roomd_base::json_error::deserialize(args).map_err(|e| CommandError::InvalidArguments {
        command,
        message: e.message,
    })
}

/// Names come from request paths; keep error messages bounded.
fn truncate(name: &str) -> String {
    name.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_listed_command_parses_its_example() {
        for spec in COMMANDS {
            let args: Value = serde_json::from_str(spec.example).unwrap();
            RoomCommand::parse(spec.name, &args).unwrap_or_else(|e| panic!("{}: {e}", spec.name));
        }
    }

    #[test]
    fn bad_arguments_name_the_field() {
        let err = RoomCommand::parse("audio.volume.set", &json!({"level": 101})).unwrap_err();
        assert!(
            err.to_string().contains("level: 101 is out of range"),
            "{err}"
        );
        let err = RoomCommand::parse("audio.volume.set", &json!({"level": "loud"})).unwrap_err();
        assert!(err.to_string().contains("level"), "{err}");
        let err = RoomCommand::parse("audio.microphones.mute", &json!({"now": true})).unwrap_err();
        assert!(err.to_string().contains("unknown field `now`"), "{err}");
        let err = RoomCommand::parse("video.layout.set", &json!({"layout": "mosaic"})).unwrap_err();
        assert!(err.to_string().contains("layout"), "{err}");
        let err = RoomCommand::parse("standby.activate", &json!([])).unwrap_err();
        assert!(err.to_string().contains("JSON object"), "{err}");
    }

    #[test]
    fn reboot_and_power_off_take_no_arguments() {
        assert_eq!(
            RoomCommand::parse("system.reboot", &json!({})),
            Ok(RoomCommand::Reboot { by: String::new() })
        );
        assert_eq!(
            RoomCommand::parse("system.power_off", &json!({})),
            Ok(RoomCommand::PowerOff { by: String::new() })
        );
        let err = RoomCommand::parse("system.reboot", &json!({"delay": 5})).unwrap_err();
        assert!(err.to_string().contains("delay"), "{err}");
        let mut command = RoomCommand::Reboot { by: String::new() };
        *command.requester_mut().unwrap() = "user alice".into();
        assert_eq!(
            command,
            RoomCommand::Reboot {
                by: "user alice".into()
            }
        );
        assert!(RoomCommand::LeaveMeeting.requester_mut().is_none());
    }

    #[test]
    fn a_factory_reset_must_be_confirmed() {
        for args in [
            json!({}),
            json!({"confirm": "no"}),
            json!({"confirm": true}),
        ] {
            let err = RoomCommand::parse("system.factory_reset", &args).unwrap_err();
            assert!(err.to_string().contains("confirm"), "{args}: {err}");
        }
        assert_eq!(
            RoomCommand::parse("system.factory_reset", &json!({"confirm": "yes"})),
            Ok(RoomCommand::FactoryReset { by: String::new() })
        );
    }

    #[test]
    fn unknown_commands_list_the_known_ones() {
        let err = RoomCommand::parse("system.selfdestruct", &json!({})).unwrap_err();
        assert!(err.to_string().contains("audio.volume.set"), "{err}");
    }

    #[test]
    fn mute_and_unmute_map_to_one_command() {
        assert_eq!(
            RoomCommand::parse("audio.microphones.unmute", &json!({})).unwrap(),
            RoomCommand::SetMicrophonesMuted { muted: false }
        );
    }

    #[test]
    fn dtmf_takes_1_to_32_keypad_digits_only() {
        assert_eq!(
            RoomCommand::parse("meeting.dtmf", &json!({"digits": "0123456789*#ABCD"})),
            Ok(RoomCommand::SendDtmf {
                digits: "0123456789*#ABCD".into()
            })
        );
        let longest = "1".repeat(32);
        assert!(RoomCommand::parse("meeting.dtmf", &json!({ "digits": longest })).is_ok());
        for digits in ["", "12a", "1 2", "E", "１", &"1".repeat(33)] {
            let err = RoomCommand::parse("meeting.dtmf", &json!({ "digits": digits })).unwrap_err();
            assert!(err.to_string().contains("digits"), "{digits:?}: {err}");
        }
        assert!(RoomCommand::parse("meeting.dtmf", &json!({"digits": 1234})).is_err());
        assert!(RoomCommand::parse("meeting.dtmf", &json!({})).is_err());
    }
}
