// The other guests of a hosted meeting, as the room forwards them (docs/meetings.md, "Everyone
// sees everyone"): the WHEP connection has the room's audio and video first, then RELAY_SLOTS
// pairs of audio and video lines, one pair per other guest; the room says on the connection's
// data channel who each slot shows.

/** Relay slots offered: the room fills at most this many (its MAX_RELAY_SLOTS). */
export const RELAY_SLOTS = 8;
/** A participant list is a few hundred bytes; anything much larger is not one. */
const MAX_MESSAGE_BYTES = 16 * 1024;
const MAX_NAME_LENGTH = 64;

export type MediaState = "on" | "off" | "none";

/** Who one relay slot shows, as the room says. */
export interface Other {
  name: string;
  talking: boolean;
  audio: MediaState;
  video: MediaState;
}

const mediaState = (v: unknown): MediaState => (v === "on" || v === "off" ? v : "none");

/** The room's own microphone and camera, as the room says. */
export interface RoomMedia {
  muted: boolean;
  cameraOff: boolean;
}

/** A `participants` message: the room's media and who each slot shows. */
export interface Participants {
  room: RoomMedia;
  slots: (Other | null)[];
}

/** Reads a `participants` message; null for anything else or anything malformed. */
export function parseParticipants(data: unknown): Participants | null {
  if (typeof data !== "string" || data.length > MAX_MESSAGE_BYTES) return null;
  let message: unknown;
  try {
    message = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof message !== "object" || message === null) return null;
  const { type, slots, room } = message as { type?: unknown; slots?: unknown; room?: Record<string, unknown> };
  if (type !== "participants" || !Array.isArray(slots)) return null;
  return {
    room: { muted: room?.muted === true, cameraOff: room?.camera === "off" },
    slots: slots.slice(0, RELAY_SLOTS).map((slot): Other | null => {
      if (typeof slot !== "object" || slot === null) return null;
      const s = slot as Record<string, unknown>;
      if (typeof s.name !== "string") return null;
      return { name: s.name.slice(0, MAX_NAME_LENGTH), talking: s.talking === true, audio: mediaState(s.audio), video: mediaState(s.video) };
    }),
  };
}

/**
 * Adds the WHEP connection's receiving lines: the room's audio and video, then the relay slots.
 * Returns one MediaStream per slot (index 0: the room), filled as tracks arrive.
 */
export function addReceivingLines(pc: RTCPeerConnection): MediaStream[] {
  const streams = Array.from({ length: RELAY_SLOTS + 1 }, () => new MediaStream());
  for (let slot = 0; slot <= RELAY_SLOTS; slot++) {
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addTransceiver("video", { direction: "recvonly" });
  }
  pc.addEventListener("track", (e) => {
    // Lines come in pairs, in the order added above.
    const slot = Math.floor(pc.getTransceivers().indexOf(e.transceiver) / 2);
    streams[slot]?.addTrack(e.track);
  });
  return streams;
}
