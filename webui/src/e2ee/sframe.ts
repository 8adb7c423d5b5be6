// SFrame (RFC 9605) for the browser pages, with WebCrypto: the same frame format as roomd's
// `roomd-e2ee` crate (docs/security.md), so that a browser and a room open each other's frames.
// Checked against RFC 9605's test vectors and against frames roomd protected, in Debian's
// Chromium (tests/tests/e2ee_browser.rs).
//
// What stays in the clear, as authenticated metadata: Opus's first byte; VP8's first 10 bytes of
// a key frame, 3 of a delta frame; every H.264 NAL header, and SPS/PPS/AUD/end/filler units whole
// (other units are sealed one by one and escaped so that no start code appears in them).

export type CipherSuite = 4 | 5;

/** Bytes in an ArrayBuffer (what WebCrypto takes). */
export type Bytes = Uint8Array<ArrayBuffer>;

/** roomd's suite: AES-256-GCM with HKDF-SHA-512. */
export const CIPHER_SUITE: CipherSuite = 5;

const SUITES = {
  4: { hash: "SHA-256", keyBytes: 16 },
  5: { hash: "SHA-512", keyBytes: 32 },
} as const;
const NONCE_BYTES = 12;

export interface SframeKey {
  kid: bigint;
  suite: CipherSuite;
  key: CryptoKey;
  salt: Bytes;
}

function label(text: string, kid: bigint, suite: CipherSuite): Bytes {
  const prefix = new TextEncoder().encode(text);
  const out = new Uint8Array(prefix.length + 10);
  out.set(prefix);
  const view = new DataView(out.buffer);
  view.setBigUint64(prefix.length, kid);
  view.setUint16(prefix.length + 8, suite);
  return out;
}

/** Derives the AEAD key and salt of key id `kid` from key material (RFC 9605, 4.4.2). */
export async function deriveKey(
  suite: CipherSuite,
  kid: bigint,
  material: Bytes,
): Promise<SframeKey> {
  const { hash, keyBytes } = SUITES[suite];
  const base = await crypto.subtle.importKey("raw", material, "HKDF", false, ["deriveBits"]);
  const expand = (info: Bytes, bytes: number) =>
    crypto.subtle.deriveBits(
      { name: "HKDF", hash, salt: new Uint8Array(0), info },
      base,
      bytes * 8,
    );
  const raw = await expand(label("SFrame 1.0 Secret key ", kid, suite), keyBytes);
  const salt = new Uint8Array(await expand(label("SFrame 1.0 Secret salt ", kid, suite), NONCE_BYTES));
  const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
  return { kid, suite, key, salt };
}

function minimalBytes(value: bigint): Bytes {
  const bytes: number[] = [];
  let v = value;
  do {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
  } while (v > 0n);
  return Uint8Array.from(bytes);
}

/** The SFrame header of `kid` and `counter` (RFC 9605, 4.3). */
export function encodeHeader(kid: bigint, counter: bigint): Bytes {
  const parts: number[] = [];
  let config = 0;
  const kidBytes = kid < 8n ? null : minimalBytes(kid);
  const ctrBytes = counter < 8n ? null : minimalBytes(counter);
  config |= kidBytes ? 0x80 | ((kidBytes.length - 1) << 4) : Number(kid) << 4;
  config |= ctrBytes ? 0x08 | (ctrBytes.length - 1) : Number(counter);
  parts.push(config);
  if (kidBytes) parts.push(...kidBytes);
  if (ctrBytes) parts.push(...ctrBytes);
  return Uint8Array.from(parts);
}

/** Parses a header: key id, counter, and its length; null when `data` is too short. */
export function decodeHeader(data: Bytes): { kid: bigint; counter: bigint; length: number } | null {
  if (data.length < 1) return null;
  const config = data[0];
  let at = 1;
  const read = (n: number): bigint | null => {
    if (at + n > data.length) return null;
    let v = 0n;
    for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(data[at + i]);
    at += n;
    return v;
  };
  const kid = config & 0x80 ? read(((config >> 4) & 7) + 1) : BigInt((config >> 4) & 7);
  if (kid === null) return null;
  const counter = config & 0x08 ? read((config & 7) + 1) : BigInt(config & 7);
  if (counter === null) return null;
  return { kid, counter, length: at };
}

function nonce(salt: Bytes, counter: bigint): Bytes {
  const out = Uint8Array.from(salt);
  let c = counter;
  for (let i = out.length - 1; i >= 0 && c > 0n; i--) {
    out[i] ^= Number(c & 0xffn);
    c >>= 8n;
  }
  return out;
}

function concat(...parts: Bytes[]): Bytes {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Encrypts `payload` with `counter`, authenticating `metadata`: header ‖ ciphertext ‖ tag. */
export async function seal(
  key: SframeKey,
  counter: bigint,
  metadata: Bytes,
  payload: Bytes,
): Promise<Bytes> {
  const header = encodeHeader(key.kid, counter);
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce(key.salt, counter), additionalData: concat(header, metadata), tagLength: 128 },
    key.key,
    payload,
  );
  return concat(header, new Uint8Array(sealed));
}

/** Opens an SFrame ciphertext with the key its key id names; throws when it does not open. */
export async function unseal(
  keys: Map<bigint, SframeKey>,
  metadata: Bytes,
  data: Bytes,
): Promise<Bytes> {
  const header = decodeHeader(data);
  if (!header) throw new Error("SFrame: truncated header");
  const key = keys.get(header.kid);
  if (!key) throw new Error(`SFrame: no key for key id ${header.kid}`);
  const plain = await crypto.subtle.decrypt(
    {
      name: "AES-GCM",
      iv: nonce(key.salt, header.counter),
      additionalData: concat(data.subarray(0, header.length), metadata),
      tagLength: 128,
    },
    key.key,
    data.subarray(header.length),
  );
  return new Uint8Array(plain);
}

export type Codec = "opus" | "vp8" | "h264";

/** A sender's key and frame counter. */
export class Sender {
  private counter = 0n;
  constructor(readonly key: SframeKey) {}
  next(): bigint {
    return this.counter++;
  }
}

function clearPrefix(codec: Codec, frame: Bytes): number {
  if (codec === "opus") return 1;
  // VP8: bit 0 of the frame tag is 0 for a key frame (RFC 6386, 9.1).
  return frame.length > 0 && (frame[0] & 1) === 0 ? 10 : 3;
}

const START_CODE = Uint8Array.of(0, 0, 0, 1);
const STOP_BYTE = 0x80;
const MAX_NAL_UNITS = 1024;

function nalUnits(au: Bytes): Bytes[] {
  const starts: number[] = [];
  for (let i = 0; i + 2 < au.length; ) {
    if (au[i] === 0 && au[i + 1] === 0 && au[i + 2] === 1) {
      starts.push(i + 3);
      if (starts.length > MAX_NAL_UNITS) throw new Error(`more than ${MAX_NAL_UNITS} NAL units`);
      i += 3;
    } else {
      i += 1;
    }
  }
  if (starts.length === 0) throw new Error("the H.264 access unit has no start code");
  const units: Bytes[] = [];
  starts.forEach((start, n) => {
    let end = n + 1 < starts.length ? starts[n + 1] - 3 : au.length;
    while (end > start && au[end - 1] === 0) end--;
    if (end > start) units.push(au.subarray(start, end));
  });
  return units;
}

const staysClear = (nalType: number) => nalType >= 7 && nalType <= 12;

function escape(data: Bytes): Bytes {
  const out: number[] = [];
  let zeros = 0;
  for (const b of data) {
    if (zeros >= 2 && b <= 3) {
      out.push(3);
      zeros = 0;
    }
    out.push(b);
    zeros = b === 0 ? zeros + 1 : 0;
  }
  out.push(STOP_BYTE);
  return Uint8Array.from(out);
}

function unescape(data: Bytes): Bytes {
  if (data.length === 0 || data[data.length - 1] !== STOP_BYTE) {
    throw new Error("a protected H.264 NAL unit lacks its stop byte");
  }
  const out: number[] = [];
  let zeros = 0;
  for (const b of data.subarray(0, data.length - 1)) {
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    out.push(b);
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return Uint8Array.from(out);
}

/** Protects one encoded frame, as roomd's `frame::protect`. */
export async function protect(codec: Codec, sender: Sender, frame: Bytes): Promise<Bytes> {
  if (codec === "h264") {
    const parts: Bytes[] = [];
    for (const unit of nalUnits(frame)) {
      parts.push(START_CODE);
      if (staysClear(unit[0] & 0x1f)) {
        parts.push(unit);
        continue;
      }
      const header = unit.subarray(0, 1);
      parts.push(header, escape(await seal(sender.key, sender.next(), header, unit.subarray(1))));
    }
    return concat(...parts);
  }
  const clear = clearPrefix(codec, frame);
  if (frame.length < clear) throw new Error(`a ${codec} frame shorter than its clear header`);
  const metadata = frame.subarray(0, clear);
  return concat(metadata, await seal(sender.key, sender.next(), metadata, frame.subarray(clear)));
}

/** Opens one protected frame, as roomd's `frame::open`; throws for anything else. */
export async function open(codec: Codec, keys: Map<bigint, SframeKey>, data: Bytes): Promise<Bytes> {
  if (codec === "h264") {
    const parts: Bytes[] = [];
    for (const unit of nalUnits(data)) {
      parts.push(START_CODE);
      if (staysClear(unit[0] & 0x1f)) {
        parts.push(unit);
        continue;
      }
      const header = unit.subarray(0, 1);
      parts.push(header, await unseal(keys, header, unescape(unit.subarray(1))));
    }
    return concat(...parts);
  }
  const clear = clearPrefix(codec, data);
  if (data.length < clear) throw new Error(`a ${codec} frame shorter than its clear header`);
  const metadata = data.subarray(0, clear);
  return concat(metadata, await unseal(keys, metadata, data.subarray(clear)));
}
