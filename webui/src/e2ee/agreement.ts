// A browser participant's end-to-end key agreement in one meeting: the same protocol as roomd's
// `roomd-e2ee` session (daemon/e2ee/src/session.rs and exchange.rs; docs/security.md, "Keys"),
// so that browsers and rooms grant each other their sender keys.
//
// - The identity key is a non-extractable WebCrypto ECDSA P-256 key made by the page; the
//   announce carries its public key (`identity: {kind: "key", spki}`) and is signed by it.
// - The meeting key is an HPKE DHKEM(P-256) key pair for this meeting only; grants are sealed
//   to it with HPKE base mode (RFC 9180; HKDF-SHA256, AES-256-GCM), through `@hpke/core`
//   (WebCrypto underneath), as the Rust side does with the `hpke` crate.
// - Verification: a room's certificate is not checked against a CA here (the page holds no
//   customer CA); every peer starts unverified and becomes verified when both sides confirmed
//   the short authentication string.
//
// Messages are JSON as serde writes them: byte strings as arrays of numbers, key ids as u64
// numbers. Key ids use 56 bits, more than a JavaScript number holds exactly, so they are read
// from the JSON text itself (JSON.parse's source text) and written as raw JSON.

import { Aes256Gcm, CipherSuite, DhkemP256HkdfSha256, HkdfSha256 } from "@hpke/core";

const ANNOUNCE_CONTEXT = "roomd-e2ee announce v1";
const GRANT_CONTEXT = "roomd-e2ee grant v1";
const SAS_CONTEXT = "roomd-e2ee sas v1";
/** As roomd: most peers, largest message, longest id, key material sizes. */
export const MAX_PEERS = 64;
export const MAX_MESSAGE_BYTES = 64 * 1024;
const MAX_ID_LEN = 256;
const MAX_CHAIN = 4;
const MAX_CERT_LEN = 8192;
const KEYS_PER_SENDER = 2;
const REANNOUNCE_SECONDS = 1;

type Bytes = Uint8Array<ArrayBuffer>;

export type Identity = { kind: "key"; spki: Bytes } | { kind: "certificate"; chain: Bytes[] };

export interface Announce {
  participant: string;
  identity: Identity;
  meeting_key: Bytes;
  signature: Bytes;
}

export interface KeyGrant {
  from: string;
  to: string;
  key_id: bigint;
  enc: Bytes;
  sealed: Bytes;
}

export type Message =
  | ({ type: "announce" } & Announce)
  | ({ type: "grant" } & KeyGrant)
  | { type: "sas_confirmed"; from: string; peer: string }
  /** The sender shares content from a second publisher (`feed`), under its key ids with bit 57. */
  | { type: "content"; from: string; feed: string };

/** What the owner of the agreement must do, as roomd's `Effect`. */
export type Effect =
  | { kind: "send"; to: string | null; message: Message }
  | { kind: "sender-key"; keyId: bigint; secret: Bytes }
  | { kind: "insert-key"; participant: string; keyId: bigint; secret: Bytes }
  | { kind: "remove-key"; participant: string; keyId: bigint };

export interface PeerStatus {
  participant: string;
  /** We hold its current key and it was granted ours. */
  endToEnd: boolean;
  /** "sas" once both sides confirmed the digits, else null. */
  verifiedBy: "sas" | null;
  sas: string;
  sasConfirmedHere: boolean;
  /** How many of its sender keys we hold (2 across a rekey: the new one and the one before). */
  keys: number;
}

const suite = new CipherSuite({
  kem: new DhkemP256HkdfSha256(),
  kdf: new HkdfSha256(),
  aead: new Aes256Gcm(),
});

const utf8 = (text: string) => new TextEncoder().encode(text) as Bytes;

function lengthPrefixed(fields: Uint8Array[], tail: Uint8Array = new Uint8Array(0)): Bytes {
  const size = fields.reduce((n, f) => n + 4 + f.length, 0) + tail.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const field of fields) {
    view.setUint32(at, field.length);
    out.set(field, at + 4);
    at += 4 + field.length;
  }
  out.set(tail, at);
  return out;
}

function u64(value: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, value);
  return out;
}

function announceTranscript(meeting: string, participant: string, spki: Uint8Array, meetingKey: Uint8Array): Bytes {
  return lengthPrefixed([utf8(ANNOUNCE_CONTEXT), utf8(meeting), utf8(participant), spki, meetingKey]);
}

function grantInfo(meeting: string, from: string, to: string, keyId: bigint): Bytes {
  return lengthPrefixed([utf8(GRANT_CONTEXT), utf8(meeting), utf8(from), utf8(to)], u64(keyId));
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return compareBytes(a, b) === 0;
}

/** The six digits two participants read to each other (roomd's `short_authentication_string`). */
export async function shortAuthenticationString(meeting: string, a: Uint8Array, b: Uint8Array): Promise<string> {
  const [first, second] = compareBytes(a, b) <= 0 ? [a, b] : [b, a];
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", lengthPrefixed([utf8(SAS_CONTEXT), utf8(meeting), first, second])),
  );
  const n = new DataView(digest.buffer).getUint32(0) % 1_000_000;
  const three = (v: number) => String(v).padStart(3, "0");
  return `${three(Math.floor(n / 1000))} ${three(n % 1000)}`;
}

// A minimal DER reader: enough to find a certificate's SubjectPublicKeyInfo.
function derElement(data: Uint8Array, at: number): { tag: number; start: number; end: number } {
  if (at + 2 > data.length) throw new Error("truncated DER");
  const tag = data[at];
  let length = data[at + 1];
  let start = at + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 3 || start + bytes > data.length) throw new Error("bad DER length");
    length = 0;
    for (let i = 0; i < bytes; i++) length = (length << 8) | data[start + i];
    start += bytes;
  }
  if (start + length > data.length) throw new Error("truncated DER");
  return { tag, start, end: start + length };
}

/** The SubjectPublicKeyInfo of a DER certificate (RFC 5280: tbsCertificate's seventh field). */
export function certificateSpki(der: Uint8Array): Bytes {
  const certificate = derElement(der, 0);
  const tbs = derElement(der, certificate.start);
  let at = tbs.start;
  let field = derElement(der, at);
  // [0] version is optional.
  if (field.tag === 0xa0) {
    at = field.end;
    field = derElement(der, at);
  }
  // serialNumber, signature, issuer, validity, subject, then subjectPublicKeyInfo.
  for (let skip = 0; skip < 5; skip++) {
    at = field.end;
    field = derElement(der, at);
  }
  if (field.tag !== 0x30) throw new Error("no SubjectPublicKeyInfo in the certificate");
  return der.slice(at, field.end) as Bytes;
}

function identitySpki(identity: Identity): Bytes {
  if (identity.kind === "key") {
    if (identity.spki.length > MAX_CERT_LEN) throw new Error("identity.spki too large");
    return identity.spki;
  }
  if (identity.chain.length === 0 || identity.chain.length > MAX_CHAIN) throw new Error("identity.chain: 1 to 4 certificates");
  if (identity.chain.some((c) => c.length > MAX_CERT_LEN)) throw new Error("identity.chain[]: a certificate too large");
  return certificateSpki(identity.chain[0]);
}

function checkId(what: string, id: string) {
  if (utf8(id).length > MAX_ID_LEN) throw new Error(`${what} longer than ${MAX_ID_LEN} bytes`);
}

// Reading and writing messages exactly as serde does.
function bytesOf(value: unknown, field: string): Bytes {
  if (!Array.isArray(value) || value.length > MAX_MESSAGE_BYTES || !value.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) {
    throw new Error(`${field} is not a byte string`);
  }
  return Uint8Array.from(value as number[]) as Bytes;
}

function stringOf(value: unknown, field: string): string {
  if (typeof value !== "string") throw new Error(`${field} is not a string`);
  return value;
}

/** Parses a key message from the data path, bounded in size. */
export function parseMessage(text: string): Message {
  if (utf8(text).length > MAX_MESSAGE_BYTES) throw new Error(`a key message over ${MAX_MESSAGE_BYTES} bytes`);
  // Key ids exceed 2^53: the reviver reads them from their source text.
  type Reviver = (this: unknown, key: string, value: unknown, context?: { source?: string }) => unknown;
  const reviver: Reviver = (key, value, context) =>
    key === "key_id" && typeof value === "number" && context?.source ? BigInt(context.source) : value;
  const raw = JSON.parse(text, reviver as (key: string, value: unknown) => unknown) as Record<string, unknown>;
  if (raw === null || typeof raw !== "object") throw new Error("not a key message");
  switch (raw.type) {
    case "announce": {
      const id = raw.identity as Record<string, unknown> | undefined;
      let identity: Identity;
      if (id?.kind === "key") identity = { kind: "key", spki: bytesOf(id.spki, "identity.spki") };
      else if (id?.kind === "certificate" && Array.isArray(id.chain) && id.chain.length <= MAX_CHAIN) {
        identity = { kind: "certificate", chain: id.chain.map((c) => bytesOf(c, "identity.chain[]")) };
      } else throw new Error("announce: unknown identity");
      return {
        type: "announce",
        participant: stringOf(raw.participant, "participant"),
        identity,
        meeting_key: bytesOf(raw.meeting_key, "meeting_key"),
        signature: bytesOf(raw.signature, "signature"),
      };
    }
    case "grant": {
      if (typeof raw.key_id !== "bigint") throw new Error("grant: key_id is not an integer");
      return {
        type: "grant",
        from: stringOf(raw.from, "from"),
        to: stringOf(raw.to, "to"),
        key_id: raw.key_id,
        enc: bytesOf(raw.enc, "enc"),
        sealed: bytesOf(raw.sealed, "sealed"),
      };
    }
    case "sas_confirmed":
      return { type: "sas_confirmed", from: stringOf(raw.from, "from"), peer: stringOf(raw.peer, "peer") };
    case "content":
      return { type: "content", from: stringOf(raw.from, "from"), feed: stringOf(raw.feed, "feed") };
    default:
      throw new Error(`not an end-to-end key message: type ${String(raw.type)}`);
  }
}

/** The message as it goes on the data path (serde's JSON). */
export function encodeMessage(message: Message): string {
  const rawJson = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;
  return JSON.stringify(message, (_key, value) => {
    if (value instanceof Uint8Array) return Array.from(value);
    if (typeof value === "bigint") return rawJson(value.toString());
    return value;
  });
}

function randomBytes(n: number): Bytes {
  return crypto.getRandomValues(new Uint8Array(n)) as Bytes;
}

function randomPrefix(): bigint {
  // 40 random bits above the 16-bit epoch, as roomd: SFrame headers carry at most 8 bytes.
  const b = randomBytes(5);
  return b.reduce((n, byte) => (n << 8n) | BigInt(byte), 0n) << 16n;
}

interface Peer {
  announce: Announce;
  spki: Bytes;
  meetingKey: CryptoKey;
  sasConfirmedHere: boolean;
  sasConfirmedThere: boolean;
  keyIds: bigint[];
  granted: bigint | null;
  reannouncedAt: number | null;
}

/** A browser's identity: a non-extractable ECDSA P-256 key made by the page. */
export interface BrowserIdentity {
  privateKey: CryptoKey;
  spki: Bytes;
}

export async function makeIdentity(): Promise<BrowserIdentity> {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey)) as Bytes;
  return { privateKey: pair.privateKey, spki };
}

/** One browser participant's key agreement in one meeting (roomd's `E2eeSession`). */
export class Agreement {
  private peers = new Map<string, Peer>();
  private epoch = 0;
  private readonly keyPrefix = randomPrefix();
  private secret: Bytes = randomBytes(32);

  private constructor(
    readonly meeting: string,
    readonly me: string,
    private readonly identity: BrowserIdentity,
    private readonly meetingKeys: CryptoKeyPair,
    private readonly ownAnnounce: Announce,
  ) {}

  /** Starts as `me` in `meeting`: the effects set our first sender key and announce us. */
  static async start(meeting: string, me: string, identity: BrowserIdentity): Promise<[Agreement, Effect[]]> {
    checkId("meeting", meeting);
    checkId("participant", me);
    const meetingKeys = await suite.kem.generateKeyPair();
    const meetingKey = new Uint8Array(await suite.kem.serializePublicKey(meetingKeys.publicKey)) as Bytes;
    const signature = new Uint8Array(
      await crypto.subtle.sign(
        { name: "ECDSA", hash: "SHA-256" },
        identity.privateKey,
        announceTranscript(meeting, me, identity.spki, meetingKey),
      ),
    ) as Bytes;
    const announce: Announce = { participant: me, identity: { kind: "key", spki: identity.spki }, meeting_key: meetingKey, signature };
    const agreement = new Agreement(meeting, me, identity, meetingKeys, announce);
    return [
      agreement,
      [
        { kind: "sender-key", keyId: agreement.keyId(), secret: agreement.secret },
        agreement.announce(),
      ],
    ];
  }

  keyId(): bigint {
    return this.keyPrefix | BigInt(this.epoch);
  }

  keyEpoch(): number {
    return this.epoch;
  }

  /** Our announce for everybody (sent again now and then: the data path may lose messages). */
  announce(to: string | null = null): Effect {
    return { kind: "send", to, message: { type: "announce", ...this.ownAnnounce } };
  }

  /** Handles a message the transport says came from `sender`; throws when it is refused. */
  async receive(sender: string, message: Message, nowSeconds = Date.now() / 1000): Promise<Effect[]> {
    const claimed = message.type === "announce" ? message.participant : message.from;
    if (claimed !== sender) throw new Error(`a message claiming to be from ${claimed} arrived from ${sender}`);
    switch (message.type) {
      case "announce":
        return this.onAnnounce(message, nowSeconds);
      case "grant":
        return this.onGrant(message);
      case "sas_confirmed": {
        const peer = this.peers.get(message.from);
        if (message.peer === this.me && peer) peer.sasConfirmedThere = true;
        return [];
      }
      case "content":
        // Which feed is whose content is the page's to follow (./meeting.ts).
        return [];
    }
  }

  private async grant(to: string, peer: Peer, keyId: bigint): Promise<Effect> {
    const { enc, ct } = await suite.seal(
      { recipientPublicKey: peer.meetingKey, info: grantInfo(this.meeting, this.me, to, keyId) },
      this.secret,
    );
    const grant: KeyGrant = { from: this.me, to, key_id: keyId, enc: new Uint8Array(enc) as Bytes, sealed: new Uint8Array(ct) as Bytes };
    return { kind: "send", to, message: { type: "grant", ...grant } };
  }

  private async onAnnounce(announce: Announce, now: number): Promise<Effect[]> {
    const id = announce.participant;
    if (id === this.me) return [];
    checkId("participant", id);
    const known = this.peers.get(id);
    if (known && sameAnnounce(known.announce, announce)) {
      const effects: Effect[] = [];
      if (known.keyIds.length === 0 && (known.reannouncedAt === null || now - known.reannouncedAt >= REANNOUNCE_SECONDS)) {
        known.reannouncedAt = now;
        effects.push(this.announce(id));
      }
      effects.push(await this.grant(id, known, this.keyId()));
      return effects;
    }
    if (!known && this.peers.size >= MAX_PEERS) throw new Error(`more than ${MAX_PEERS} participants announced themselves`);
    const spki = identitySpki(announce.identity);
    const identityKey = await crypto.subtle
      .importKey("spki", spki, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"])
      .catch(() => {
        throw new Error(`the identity of ${id} is not a P-256 key`);
      });
    const meetingKey = await suite.kem.deserializePublicKey(announce.meeting_key).catch(() => {
      throw new Error(`the meeting key of ${id} is not a P-256 public key`);
    });
    const signed = await crypto.subtle.verify(
      { name: "ECDSA", hash: "SHA-256" },
      identityKey,
      announce.signature,
      announceTranscript(this.meeting, id, spki, announce.meeting_key),
    );
    if (!signed) throw new Error(`the announce of ${id} is not signed by its identity key for this meeting`);
    const effects: Effect[] = [];
    // Another identity under a known id is someone else: its keys go.
    const sameIdentity = known !== undefined && equalBytes(known.spki, spki);
    if (known && !sameIdentity) {
      for (const keyId of known.keyIds) effects.push({ kind: "remove-key", participant: id, keyId });
    }
    const peer: Peer = {
      announce,
      spki,
      meetingKey,
      sasConfirmedHere: false,
      sasConfirmedThere: false,
      keyIds: sameIdentity ? known.keyIds : [],
      granted: this.keyId(),
      reannouncedAt: null,
    };
    this.peers.set(id, peer);
    effects.push(this.announce(id));
    effects.push(await this.grant(id, peer, this.keyId()));
    return effects;
  }

  private async onGrant(grant: KeyGrant): Promise<Effect[]> {
    const peer = this.peers.get(grant.from);
    if (!peer) throw new Error(`a key grant from ${grant.from}, who is not a verified participant`);
    if (grant.to !== this.me) throw new Error(`a key grant from ${grant.from} to ${grant.to} is not for this participant`);
    let secret: Bytes;
    try {
      secret = new Uint8Array(
        await suite.open(
          { recipientKey: this.meetingKeys, enc: grant.enc, info: grantInfo(this.meeting, grant.from, this.me, grant.key_id) },
          grant.sealed,
        ),
      ) as Bytes;
    } catch {
      throw new Error(`the key grant from ${grant.from} does not open with this participant's meeting key`);
    }
    if (secret.length < 16 || secret.length > 64) throw new Error(`a key of ${secret.length} bytes from ${grant.from}`);
    const effects: Effect[] = [{ kind: "insert-key", participant: grant.from, keyId: grant.key_id, secret }];
    if (!peer.keyIds.includes(grant.key_id)) peer.keyIds.push(grant.key_id);
    while (peer.keyIds.length > KEYS_PER_SENDER) {
      const old = peer.keyIds.shift() as bigint;
      effects.push({ kind: "remove-key", participant: grant.from, keyId: old });
    }
    return effects;
  }

  /** `participant` left: its keys go, and the others get a new sender key it never sees. */
  async leave(participant: string): Promise<Effect[]> {
    const peer = this.peers.get(participant);
    if (!peer) return [];
    this.peers.delete(participant);
    const effects: Effect[] = peer.keyIds.map((keyId) => ({ kind: "remove-key", participant, keyId }));
    return effects.concat(await this.rekey());
  }

  /** A new sender key for everyone present (also on the rekey timer). */
  async rekey(): Promise<Effect[]> {
    this.epoch = (this.epoch + 1) & 0xffff;
    this.secret = randomBytes(32);
    const keyId = this.keyId();
    const effects: Effect[] = [{ kind: "sender-key", keyId, secret: this.secret }];
    for (const [id, peer] of this.peers) {
      peer.granted = keyId;
      effects.push(await this.grant(id, peer, keyId));
    }
    return effects;
  }

  /** Our person confirmed the short authentication string with `participant`. */
  confirmSas(participant: string): Effect[] {
    const peer = this.peers.get(participant);
    if (!peer) return [];
    peer.sasConfirmedHere = true;
    return [{ kind: "send", to: participant, message: { type: "sas_confirmed", from: this.me, peer: participant } }];
  }

  /** Every peer as the indicators show it. */
  async status(): Promise<PeerStatus[]> {
    const out: PeerStatus[] = [];
    for (const [id, p] of this.peers) {
      out.push({
        participant: id,
        endToEnd: p.granted === this.keyId() && p.keyIds.length > 0,
        verifiedBy: p.sasConfirmedHere && p.sasConfirmedThere ? "sas" : null,
        sas: await shortAuthenticationString(this.meeting, this.identity.spki, p.spki),
        sasConfirmedHere: p.sasConfirmedHere,
        keys: p.keyIds.length,
      });
    }
    return out;
  }
}

function sameAnnounce(a: Announce, b: Announce): boolean {
  return encodeMessage({ type: "announce", ...a }) === encodeMessage({ type: "announce", ...b });
}
