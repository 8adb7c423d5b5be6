// A browser participant's end-to-end encryption in one meeting: the key agreement
// (./agreement.ts) over the meeting's data channels, its keys in the frame transforms
// (./transform-worker.ts). Transport-independent: the page says which data channel carries its
// own messages and which carries each other participant's (in a Janus VideoRoom: its
// publisher's channel, and its subscription to each feed, as roomd does: docs/security.md).
//
// As roomd: the announce goes out when the channel opens, when a participant joins and after
// a rekey, and again every 2 s while keys are not established with every participant received,
// at most 15 times after the last of those events. Grants and confirmations for others are
// heard (everybody hears everything) and ignored.
//
// Shared content: a room shares from a second publisher and declares it ({"type":"content"},
// on its own channel); its frames open with that room's keys under content key ids (bit 57).
// The page gives its subscription to a declared content feed the declaring participant's keys,
// and only those, and shows the feed as it shows its owner (docs/security.md, "Shared content").
//
// Video is sent as VP8 in an encrypted meeting: Chromium's H.264 receiver parses each slice
// header (which SFrame leaves encrypted) before the frame reaches the transform, and drops what
// it cannot parse (measured in Debian's Chromium: 8 of 158 frames reached the transform, none
// decoded), while VP8's payload descriptor and frame header stay in the clear.

import { Agreement, encodeMessage, makeIdentity, parseMessage, type Effect, type PeerStatus } from "./agreement";

const ANNOUNCE_INTERVAL_MS = 2000;
const ANNOUNCE_REPEATS = 15;
/** Key id bit of a sender's shared content (roomd's `CONTENT_KEY_ID_BIT`). */
const CONTENT_KEY_ID_BIT = 1n << 57n;
/** Most content feeds declared at once, as roomd. */
const MAX_DECLARED = 64;
/** Messages a peer may send a second before the rest of that second's are dropped. */
const MESSAGES_PER_SECOND = 100;

export interface MeetingStatus {
  state: "establishing" | "established";
  reason: string;
  keyEpoch: number;
  participants: Array<PeerStatus | { participant: string; endToEnd: false; verifiedBy: null; sas: ""; sasConfirmedHere: false; keys: 0 }>;
  frames: Record<string, { sent: number; dropped: number; opened: number; refused: number; keyframe_requests: number; last_error: string }>;
  errors: string[];
  /** The data path: our channel's state, messages sent and heard (also others' grants). */
  channel: { send: string; receiving: number; sent: number; heard: number };
}

interface RtpScriptTransformCtor {
  new (worker: Worker, options: Record<string, unknown>): unknown;
}

export class MeetingE2ee {
  private agreement: Agreement | null = null;
  private sendChannel: RTCDataChannel | null = null;
  private repeatsLeft = ANNOUNCE_REPEATS;
  private timer: ReturnType<typeof setInterval> | null = null;
  private received: string[] = [];
  private rate = new Map<string, { second: number; count: number }>();
  private frames: MeetingStatus["frames"] = {};
  private readonly errors: string[] = [];
  private queue: Promise<void> = Promise.resolve();
  private receiving = 0;
  private sent = 0;
  private heard = 0;
  /** Each participant's keys we hold (as granted), for its content: oldest first. */
  private owners = new Map<string, Array<{ keyId: bigint; secret: Uint8Array }>>();
  /** Content feeds declared: content feed → the participant who declared it. */
  private declared = new Map<string, string>();

  constructor(
    private readonly worker: Worker,
    private readonly meeting: string,
  ) {
    worker.addEventListener("message", (event: MessageEvent) => {
      if (event.data?.type === "counts") this.frames = event.data.counts;
      if (event.data?.type === "error") this.note(`frame transforms: ${event.data.message}`);
    });
  }

  /** Starts as participant `me` (in Janus: our publisher id). */
  async start(me: string): Promise<void> {
    const [agreement, effects] = await Agreement.start(this.meeting, me, await makeIdentity());
    this.agreement = agreement;
    this.apply(effects);
    this.timer = setInterval(() => this.repeatAnnounce(), ANNOUNCE_INTERVAL_MS);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** The transform for a sender of `kind`; set it before the track sends a frame. */
  senderTransform(kind: "audio" | "video"): unknown {
    const Transform = (globalThis as unknown as { RTCRtpScriptTransform: RtpScriptTransformCtor }).RTCRtpScriptTransform;
    return new Transform(this.worker, { side: "send", kind, name: `send-${kind}` });
  }

  /** The transform for what `participant` sends of `kind`. */
  receiverTransform(participant: string, kind: "audio" | "video"): unknown {
    const Transform = (globalThis as unknown as { RTCRtpScriptTransform: RtpScriptTransformCtor }).RTCRtpScriptTransform;
    return new Transform(this.worker, { side: "receive", kind, name: `${participant}-${kind}`, feed: participant });
  }

  /** The channel our messages go out on. */
  attachSendChannel(channel: RTCDataChannel): void {
    this.sendChannel = channel;
    channel.addEventListener("open", () => this.announceNow());
  }

  /** The channel on which `participant`'s messages arrive. */
  attachReceiveChannel(participant: string, channel: RTCDataChannel): void {
    this.receiving++;
    channel.addEventListener("message", (event: MessageEvent) => {
      this.heard++;
      if (typeof event.data === "string") this.onData(participant, event.data);
    });
  }

  /** The participants whose media we receive (for the state and the announce repeats). */
  setReceived(participants: string[]): void {
    const joined = participants.some((p) => !this.received.includes(p));
    this.received = [...participants];
    if (joined) this.announceNow();
  }

  /** `participant` left: its keys go and we rekey for those who stay. */
  leave(participant: string): void {
    this.received = this.received.filter((p) => p !== participant);
    this.owners.delete(participant);
    for (const [content, owner] of this.declared) {
      if (content === participant || owner === participant) this.declared.delete(content);
    }
    this.serially(async (a) => {
      const effects = await a.leave(participant);
      this.worker.postMessage({ type: "forget-feed", feed: participant });
      if (effects.some((e) => e.kind === "sender-key")) effects.push(this.freshAnnounce(a));
      return effects;
    });
  }

  /** A new sender key for those present. */
  rekey(): void {
    this.serially(async (a) => [...(await a.rekey()), this.freshAnnounce(a)]);
  }

  /** Our person confirmed the digits with `participant`. */
  confirmSas(participant: string): void {
    this.serially(async (a) => a.confirmSas(participant));
  }

  async status(): Promise<MeetingStatus> {
    this.worker.postMessage({ type: "counts" });
    const known = new Map((await this.agreement?.status())?.map((p) => [p.participant, p]) ?? []);
    const participants = this.received.map(
      (id) =>
        this.asOwner(known, id) ?? { participant: id, endToEnd: false as const, verifiedBy: null, sas: "" as const, sasConfirmedHere: false as const, keys: 0 as const },
    );
    const missing = participants.filter((p) => !p.endToEnd).map((p) => p.participant);
    const established = participants.length > 0 && missing.length === 0;
    return {
      state: established ? "established" : "establishing",
      reason: participants.length === 0 ? "no other participant yet" : missing.length ? `no end-to-end keys yet with ${missing.join(", ")}` : "",
      keyEpoch: this.agreement?.keyEpoch() ?? 0,
      participants,
      frames: this.frames,
      errors: [...this.errors],
      channel: { send: this.sendChannel?.readyState ?? "none", receiving: this.receiving, sent: this.sent, heard: this.heard },
    };
  }

  /** A participant as the agreement knows it, or a declared content feed as its owner. */
  private asOwner(known: Map<string, PeerStatus>, id: string): PeerStatus | undefined {
    const owner = this.declared.get(id);
    if (owner === undefined) return known.get(id);
    const status = known.get(owner);
    return status && { ...status, participant: id };
  }

  /** `owner` declared `feed` its content: the feed gets the owner's keys, content bit set. */
  private declare(owner: string, feed: string): void {
    if (feed === owner || (!this.declared.has(feed) && this.declared.size >= MAX_DECLARED)) {
      this.note(`${owner} declared ${feed} its content: refused`);
      return;
    }
    const before = this.declared.get(feed);
    if (before === owner) return;
    this.worker.postMessage({ type: "forget-feed", feed });
    this.declared.set(feed, owner);
    for (const { keyId, secret } of this.owners.get(owner) ?? []) {
      this.worker.postMessage({ type: "receiver-key", feed, kid: (keyId | CONTENT_KEY_ID_BIT).toString(), secret });
    }
  }

  private contentOf(owner: string): string[] {
    return [...this.declared].filter(([, o]) => o === owner).map(([feed]) => feed);
  }

  private onData(participant: string, text: string): void {
    const second = Math.floor(Date.now() / 1000);
    const rate = this.rate.get(participant);
    if (rate && rate.second === second && rate.count >= MESSAGES_PER_SECOND) return;
    this.rate.set(participant, rate && rate.second === second ? { second, count: rate.count + 1 } : { second, count: 1 });
    this.serially(async (a) => {
      const message = parseMessage(text);
      if (message.type === "grant" && message.to !== a.me) return [];
      if (message.type === "sas_confirmed" && message.peer !== a.me) return [];
      const effects = await a.receive(participant, message);
      if (message.type === "content") this.declare(participant, message.feed);
      return effects;
    });
  }

  private freshAnnounce(a: Agreement): Effect {
    this.repeatsLeft = ANNOUNCE_REPEATS;
    return a.announce();
  }

  private announceNow(): void {
    this.serially(async (a) => [this.freshAnnounce(a)]);
  }

  private async repeatAnnounce(): Promise<void> {
    if (this.repeatsLeft === 0 || !this.agreement) return;
    if ((await this.status()).state === "established") return;
    this.repeatsLeft--;
    this.apply([this.agreement.announce()]);
  }

  // One message at a time, in arrival order: the agreement's state is not shared by two awaits.
  private serially(step: (a: Agreement) => Promise<Effect[]>): void {
    this.queue = this.queue.then(async () => {
      if (!this.agreement) return;
      try {
        this.apply(await step(this.agreement));
      } catch (error) {
        this.note(String(error));
      }
    });
  }

  private note(error: string): void {
    this.errors.push(error);
    if (this.errors.length > 20) this.errors.shift();
  }

  private apply(effects: Effect[]): void {
    for (const effect of effects) {
      switch (effect.kind) {
        case "send":
          if (this.sendChannel?.readyState === "open") {
            this.sendChannel.send(encodeMessage(effect.message));
            this.sent++;
          }
          break;
        case "sender-key":
          this.worker.postMessage({ type: "sender-key", kid: effect.keyId.toString(), secret: effect.secret });
          break;
        case "insert-key": {
          this.worker.postMessage({ type: "receiver-key", feed: effect.participant, kid: effect.keyId.toString(), secret: effect.secret });
          const keys = (this.owners.get(effect.participant) ?? []).filter((k) => k.keyId !== effect.keyId);
          keys.push({ keyId: effect.keyId, secret: effect.secret });
          this.owners.set(effect.participant, keys.slice(-2));
          for (const feed of this.contentOf(effect.participant)) {
            const kid = (effect.keyId | CONTENT_KEY_ID_BIT).toString();
            this.worker.postMessage({ type: "receiver-key", feed, kid, secret: effect.secret });
          }
          break;
        }
        case "remove-key": {
          this.worker.postMessage({ type: "remove-key", feed: effect.participant, kid: effect.keyId.toString() });
          const keys = this.owners.get(effect.participant);
          if (keys) this.owners.set(effect.participant, keys.filter((k) => k.keyId !== effect.keyId));
          for (const feed of this.contentOf(effect.participant)) {
            this.worker.postMessage({ type: "remove-key", feed, kid: (effect.keyId | CONTENT_KEY_ID_BIT).toString() });
          }
          break;
        }
      }
    }
  }
}
