// The other guests of a hosted meeting, as the room forwards them (docs/meetings.md, "Everyone
// sees everyone"): the WHEP connection has the room's audio and video first, then RELAY_SLOTS
// pairs of audio and video lines, one pair per other guest, then a video line for the room's
// shared content; the room says on the connection's data channel who each slot shows.

import { CHAT_MAX_CHARS } from "../chat";

/** Relay slots offered: the room fills at most this many (its MAX_RELAY_SLOTS). */
export const RELAY_SLOTS = 8;
/** A participant list is a few hundred bytes; anything much larger is not one. */
const MAX_MESSAGE_BYTES = 16 * 1024;
const MAX_NAME_LENGTH = 64;

export type MediaState = "on" | "off" | "none";

/** Who one relay slot shows, as the room says. */
export interface Other {
  /** Their participant id: what a moderator's requests name. */
  id: string;
  name: string;
  moderator: boolean;
  presenter: boolean;
  talking: boolean;
  handRaised: boolean;
  audio: MediaState;
  video: MediaState;
  /** Their link to the room is encrypted (DTLS-SRTP), as the room says. */
  encrypted: boolean;
}

const mediaState = (v: unknown): MediaState => (v === "on" || v === "off" ? v : "none");

/** The room's own microphone and camera, as the room says. */
export interface RoomMedia {
  muted: boolean;
  cameraOff: boolean;
  /** The room shares content (on the content line). */
  sharing: boolean;
}

/** A guest waiting in the lobby (moderators are told). */
export interface LobbyGuest {
  id: string;
  name: string;
}

/** A `participants` message: the room's media, who each slot shows, this guest's roles, the
 * lock, and (for a moderator) the lobby. */
export interface Participants {
  room: RoomMedia;
  slots: (Other | null)[];
  moderator: boolean;
  presenter: boolean;
  locked: boolean;
  lobby: LobbyGuest[];
  /** The guest whose shared window the content line carries; null: the room's content. */
  windowFrom: string | null;
  /** The largest document the room passes on, in bytes; null: documents are off. */
  documentsMaxBytes: number | null;
}

/** Guests the lobby holds at most (the room's MAX_LOBBY). */
const MAX_LOBBY = 16;
const MAX_ID_LENGTH = 64;

/** A message from the room as an object, if it is one of type `type` (and not too large). */
function messageOf(data: unknown, type: string): Record<string, unknown> | null {
  if (typeof data !== "string" || data.length > MAX_MESSAGE_BYTES) return null;
  let message: unknown;
  try {
    message = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof message !== "object" || message === null) return null;
  const m = message as Record<string, unknown>;
  return m.type === type ? m : null;
}

/** Reads a `participants` message; null for anything else or anything malformed. */
export function parseParticipants(data: unknown): Participants | null {
  const message = messageOf(data, "participants");
  if (!message) return null;
  const { slots, room, you, locked, lobby, window_from, documents_max_bytes } = message as { slots?: unknown; room?: Record<string, unknown>; you?: Record<string, unknown>; locked?: unknown; lobby?: unknown; window_from?: unknown; documents_max_bytes?: unknown };
  if (!Array.isArray(slots)) return null;
  const waiting = Array.isArray(lobby) ? lobby.slice(0, MAX_LOBBY) : [];
  return {
    room: { muted: room?.muted === true, cameraOff: room?.camera === "off", sharing: room?.content === "active" },
    slots: slots.slice(0, RELAY_SLOTS).map((slot): Other | null => {
      if (typeof slot !== "object" || slot === null) return null;
      const s = slot as Record<string, unknown>;
      if (typeof s.name !== "string" || typeof s.id !== "string") return null;
      return {
        id: s.id.slice(0, MAX_ID_LENGTH),
        name: s.name.slice(0, MAX_NAME_LENGTH),
        moderator: s.moderator === true,
        presenter: s.presenter === true,
        talking: s.talking === true,
        handRaised: s.hand_raised === true,
        audio: mediaState(s.audio),
        video: mediaState(s.video),
        encrypted: s.encryption === "dtls-srtp",
      };
    }),
    moderator: you?.moderator === true,
    presenter: you?.presenter === true,
    locked: locked === true,
    windowFrom: typeof window_from === "string" ? window_from.slice(0, MAX_NAME_LENGTH) : null,
    documentsMaxBytes: typeof documents_max_bytes === "number" && documents_max_bytes > 0 ? documents_max_bytes : null,
    lobby: waiting.flatMap((g: unknown): LobbyGuest[] => {
      const w = g as Record<string, unknown> | null;
      return typeof w?.id === "string" && typeof w?.name === "string" ? [{ id: w.id.slice(0, MAX_ID_LENGTH), name: w.name.slice(0, MAX_NAME_LENGTH) }] : [];
    }),
  };
}

/**
 * The codecs the room sends, of those this browser takes: Opus; H.264 (packetization mode 1,
 * baseline or constrained baseline) and VP8. Offering only these keeps the offer of 20 lines
 * small (with every codec a browser knows, it passed the room's 64 KiB request limit).
 */
function roomCodecs(kind: "audio" | "video"): RTCRtpCodec[] {
  const codecs = RTCRtpReceiver.getCapabilities(kind)?.codecs ?? [];
  return codecs.filter((c) => {
    const mime = c.mimeType.toLowerCase();
    if (kind === "audio") return mime === "audio/opus";
    if (mime === "video/vp8") return true;
    const fmtp = c.sdpFmtpLine ?? "";
    return mime === "video/h264" && fmtp.includes("packetization-mode=1") && /profile-level-id=42(e0|00)/i.test(fmtp);
  });
}

/** What the WHEP connection receives: the room and each slot (`people[0]`: the room), and the
 * room's shared content. */
export interface Incoming {
  people: MediaStream[];
  content: MediaStream;
}

/**
 * Adds the WHEP connection's receiving lines: the room's audio and video, the relay slots, and
 * the content. The streams are filled as tracks arrive.
 */
export function addReceivingLines(pc: RTCPeerConnection): Incoming {
  const people = Array.from({ length: RELAY_SLOTS + 1 }, () => new MediaStream());
  const content = new MediaStream();
  const line = (kind: "audio" | "video") => {
    const transceiver = pc.addTransceiver(kind, { direction: "recvonly" });
    const codecs = roomCodecs(kind);
    if (codecs.length > 0) transceiver.setCodecPreferences(codecs);
    return transceiver;
  };
  for (let slot = 0; slot <= RELAY_SLOTS; slot++) {
    line("audio");
    line("video");
  }
  const contentLine = line("video");
  pc.addEventListener("track", (e) => {
    if (e.transceiver === contentLine) return content.addTrack(e.track);
    // Lines come in pairs, in the order added above.
    const slot = Math.floor(pc.getTransceivers().indexOf(e.transceiver) / 2);
    people[slot]?.addTrack(e.track);
  });
  return { people, content };
}

/** Chat messages a page keeps on screen. */
export const CHAT_KEPT = 50;

/** A chat message as the room relays it. */
export interface ChatLine {
  from: string;
  fromRoom: boolean;
  text: string;
}

/** Reads a `chat` message; null for anything else or anything malformed. */
export function parseChat(data: unknown): ChatLine | null {
  const m = messageOf(data, "chat");
  if (!m) return null;
  if (typeof m.from !== "string" || typeof m.text !== "string") return null;
  return { from: m.from.slice(0, MAX_NAME_LENGTH), fromRoom: m.from_room === true, text: m.text.slice(0, CHAT_MAX_CHARS) };
}

/** Reads a `mute_request` message: who asks this guest to mute; null for anything else. */
export function parseMuteRequest(data: unknown): string | null {
  const m = messageOf(data, "mute_request");
  return m && typeof m.from === "string" ? m.from.slice(0, MAX_NAME_LENGTH) : null;
}

/**
 * Asks the browser for one application window to share: whole screens are not offered, nor
 * this tab (the meeting itself), and no sound.
 */
export function pickWindow(): Promise<MediaStream> {
  const options = {
    video: { displaySurface: "window" },
    audio: false,
    monitorTypeSurfaces: "exclude",
    selfBrowserSurface: "exclude",
    surfaceSwitching: "exclude",
  };
  return navigator.mediaDevices.getDisplayMedia(options as DisplayMediaStreamOptions);
}
