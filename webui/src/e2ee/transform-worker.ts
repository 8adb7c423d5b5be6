// The frame transforms of an end-to-end encrypted meeting, in a worker (RTCRtpScriptTransform):
// every encoded frame is protected after the encoder and opened before the decoder with SFrame
// (./sframe.ts, the same format as roomd's `roomd-e2ee`). The page's key agreement
// (./agreement.ts) hands keys over with postMessage; the worker never sends a key back.
//
// Nothing falls back to clear frames: until the sender key is there, frames are dropped; a
// received frame that does not open (no key for its key id, altered, or clear) is dropped and
// counted. A video frame that opens after dropped ones asks the sender for a key frame (the key
// arrived after the sender's key frame), again every 30 opened frames until a key frame opens,
// as roomd's `roomdframedecrypt` does.
//
// Messages in: {type:"sender-key", kid, secret} (kid a decimal string, secret bytes),
// {type:"receiver-key", feed, kid, secret}, {type:"remove-key", feed, kid}, {type:"counts"}.
// Messages out: {type:"counts", counts:{<transform name>:{opened,refused,dropped,sent,keyframe_requests,last_error}}}.

import { CIPHER_SUITE, Sender, deriveKey, open, protect, type Bytes, type Codec, type SframeKey } from "./sframe";

/** Bit 56 of a key id marks a sender's audio stream (roomd's `AUDIO_KEY_ID_BIT`). */
const AUDIO_KEY_ID_BIT = 1n << 56n;
/** Frames between two key frame requests while no key frame has opened. */
const KEYFRAME_REQUEST_EVERY = 30;
/** Most receiver keys held, as roomd's `MAX_RECEIVER_KEYS`. */
const MAX_RECEIVER_KEYS = 64;

interface Counts {
  sent: number;
  dropped: number;
  opened: number;
  refused: number;
  keyframe_requests: number;
  last_error: string;
}

interface EncodedFrame {
  data: ArrayBuffer;
  type?: "key" | "delta" | "empty";
  getMetadata(): { mimeType?: string };
}

interface Transformer {
  readable: ReadableStream<EncodedFrame>;
  writable: WritableStream<EncodedFrame>;
  options: { side: "send" | "receive"; kind: "audio" | "video"; name: string; feed?: string };
  sendKeyFrameRequest?: () => Promise<void>;
  generateKeyFrame?: () => Promise<void>;
}

interface WorkerScope {
  onrtctransform: ((event: { transformer: Transformer }) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
}

const scope = self as unknown as WorkerScope;

/** The sender's video and audio streams, each with its own counter (as roomd's elements). */
let senders: { video: Sender; audio: Sender } | null = null;
/** Transforms that wait for a new sender key to ask their encoder for a key frame. */
const onNewSenderKey: Array<() => void> = [];
/** Receiver keys, by feed (the participant whose frames they open), then key id. */
const receiverKeys = new Map<string, Map<bigint, SframeKey>>();
const counts = new Map<string, Counts>();

function countsOf(name: string): Counts {
  let c = counts.get(name);
  if (!c) {
    c = { sent: 0, dropped: 0, opened: 0, refused: 0, keyframe_requests: 0, last_error: "" };
    counts.set(name, c);
  }
  return c;
}

function codecOf(kind: "audio" | "video", frame: EncodedFrame): Codec | null {
  if (kind === "audio") return "opus";
  const mime = frame.getMetadata().mimeType?.toLowerCase();
  if (mime === "video/vp8") return "vp8";
  if (mime === "video/h264") return "h264";
  return null;
}

function keyCount(): number {
  let n = 0;
  for (const keys of receiverKeys.values()) n += keys.size;
  return n;
}

scope.onmessage = async (event: MessageEvent) => {
  const m = event.data;
  try {
    if (m.type === "sender-key") {
      const kid = BigInt(m.kid);
      const secret = new Uint8Array(m.secret) as Bytes;
      senders = {
        video: new Sender(await deriveKey(CIPHER_SUITE, kid, secret)),
        audio: new Sender(await deriveKey(CIPHER_SUITE, kid | AUDIO_KEY_ID_BIT, secret)),
      };
      for (const ask of onNewSenderKey) ask();
    } else if (m.type === "receiver-key") {
      const kid = BigInt(m.kid);
      const secret = new Uint8Array(m.secret) as Bytes;
      let keys = receiverKeys.get(m.feed);
      if (!keys) {
        keys = new Map();
        receiverKeys.set(m.feed, keys);
      }
      if (!keys.has(kid) && keyCount() + 2 > MAX_RECEIVER_KEYS) {
        throw new Error(`more than ${MAX_RECEIVER_KEYS} receiver keys`);
      }
      keys.set(kid, await deriveKey(CIPHER_SUITE, kid, secret));
      keys.set(kid | AUDIO_KEY_ID_BIT, await deriveKey(CIPHER_SUITE, kid | AUDIO_KEY_ID_BIT, secret));
    } else if (m.type === "remove-key") {
      const kid = BigInt(m.kid);
      const keys = receiverKeys.get(m.feed);
      keys?.delete(kid);
      keys?.delete(kid | AUDIO_KEY_ID_BIT);
    } else if (m.type === "forget-feed") {
      receiverKeys.delete(m.feed);
    } else if (m.type === "counts") {
      scope.postMessage({ type: "counts", counts: Object.fromEntries(counts) });
    }
  } catch (error) {
    scope.postMessage({ type: "error", message: String(error) });
  }
};

function sendTransform(t: Transformer): TransformStream<EncodedFrame, EncodedFrame> {
  const c = countsOf(t.options.name);
  // A new key: the receivers cannot open the delta frames that follow without a key frame
  // under it.
  if (t.options.kind === "video" && t.generateKeyFrame) {
    const generate = t.generateKeyFrame.bind(t);
    onNewSenderKey.push(() => void generate().catch(() => {}));
  }
  return new TransformStream({
    async transform(frame, controller) {
      const codec = codecOf(t.options.kind, frame);
      const sender = senders?.[t.options.kind];
      if (!sender || !codec) {
        c.dropped++;
        if (!codec) c.last_error = `no frame format for ${frame.getMetadata().mimeType ?? "?"}`;
        return;
      }
      try {
        frame.data = (await protect(codec, sender, new Uint8Array(frame.data) as Bytes)).buffer;
        c.sent++;
        controller.enqueue(frame);
      } catch (error) {
        c.dropped++;
        c.last_error = String(error);
      }
    },
  });
}

function receiveTransform(t: Transformer): TransformStream<EncodedFrame, EncodedFrame> {
  const c = countsOf(t.options.name);
  const feed = t.options.feed ?? "";
  // Whether a video key frame opened since the last refused frame, and opened frames since
  // the last key frame request.
  let pictureWhole = true;
  let sinceRequest = 0;
  const askKeyFrame = () => {
    if (t.sendKeyFrameRequest) {
      c.keyframe_requests++;
      t.sendKeyFrameRequest().catch(() => {});
    }
  };
  return new TransformStream({
    async transform(frame, controller) {
      const codec = codecOf(t.options.kind, frame);
      const keys = receiverKeys.get(feed);
      if (!codec || !keys) {
        c.refused++;
        c.last_error = codec ? `no key of participant ${feed}` : "unknown codec";
        pictureWhole = false;
        return;
      }
      try {
        const plain = await open(codec, keys, new Uint8Array(frame.data) as Bytes);
        frame.data = plain.buffer;
        c.opened++;
        if (t.options.kind === "video") {
          if (frame.type === "key") {
            pictureWhole = true;
          } else if (!pictureWhole && sinceRequest++ % KEYFRAME_REQUEST_EVERY === 0) {
            askKeyFrame();
          }
          if (pictureWhole) sinceRequest = 0;
        }
        controller.enqueue(frame);
      } catch (error) {
        c.refused++;
        c.last_error = String(error);
        pictureWhole = false;
      }
    },
  });
}

scope.onrtctransform = (event) => {
  const t = event.transformer;
  const stream = t.options.side === "send" ? sendTransform(t) : receiveTransform(t);
  t.readable.pipeThrough(stream).pipeTo(t.writable).catch(() => {});
};
