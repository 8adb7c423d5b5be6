// Documents passed directly between guests (docs/meetings.md, "Documents"): the sender's page
// hashes the file (SHA-256) and offers it to another guest; once the receiver accepts, it goes
// in chunks over the data channel, through the room's memory only, paced and acknowledged; the
// receiver's page hashes what arrived and shows both hashes. Nothing is stored anywhere but in
// the two pages' memory.
import { useRef, useState } from "preact/hooks";
import { t } from "../i18n";

/** Bytes of the file in one chunk (45 KiB: its base64 fits the room's 64 KiB messages). */
const CHUNK_BYTES = 46_080;
/** Chunks sent ahead of the receiver's acknowledgements (the room's window). */
const WINDOW = 8;
/** Chunks sent per second at most: the room takes 100 messages a second from a page. */
const CHUNKS_PER_SECOND = 40;
/** Transfers a page keeps on screen. */
const MAX_SHOWN = 20;
const MAX_TEXT = 255;

export interface Transfer {
  id: string;
  direction: "out" | "in";
  /** Who sends (in) or receives (out). */
  peer: string;
  name: string;
  size: number;
  /** The SHA-256 the sender computed. */
  sha256: string;
  /** The SHA-256 of what arrived (receiver, when done). */
  received?: string;
  bytes: number;
  state: "offered" | "sending" | "receiving" | "done" | "declined" | "cancelled";
  reason?: string;
  url?: string;
}

interface Outgoing {
  data: Uint8Array;
  nextSeq: number;
  acked: number;
}

interface Incoming {
  parts: Uint8Array<ArrayBuffer>[];
}

const hex = (buffer: ArrayBuffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
const sha256 = async (data: BufferSource) => hex(await crypto.subtle.digest("SHA-256", data));
const randomId = () => hex(crypto.getRandomValues(new Uint8Array(12)).buffer);

function toBase64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}
function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

export function formatSize(bytes: number): string {
  if (bytes >= 1_000_000) return `${(bytes / 1_000_000).toFixed(1)} MB`;
  if (bytes >= 1_000) return `${(bytes / 1_000).toFixed(0)} kB`;
  return `${bytes} B`;
}

/** A document transfer message from the room, as an object; null for anything else. */
function fileMessage(data: unknown): Record<string, unknown> | null {
  if (typeof data !== "string" || data.length > 70_000) return null;
  try {
    const m = JSON.parse(data);
    return typeof m === "object" && m !== null && typeof m.type === "string" && m.type.startsWith("file_") && typeof m.transfer === "string" ? m : null;
  } catch {
    return null;
  }
}

/**
 * The page's transfers: `send` writes on the data channel; `take` reads what the room passes
 * on (true if it was a document message).
 */
export function useDocuments(send: (message: object) => boolean) {
  const [transfers, setTransfers] = useState<Transfer[]>([]);
  const outgoing = useRef(new Map<string, Outgoing>());
  const incoming = useRef(new Map<string, Incoming>());
  const lastChunk = useRef(0);

  const update = (id: string, change: Partial<Transfer>) => setTransfers((all) => all.map((x) => (x.id === id ? { ...x, ...change } : x)));
  const add = (transfer: Transfer) => setTransfers((all) => [...all, transfer].slice(-MAX_SHOWN));

  /** Sends what the window and the pace allow; again when an acknowledgement comes. */
  const pump = (id: string) => {
    const o = outgoing.current.get(id);
    if (!o) return;
    const total = Math.ceil(o.data.length / CHUNK_BYTES);
    while (o.nextSeq < total && o.nextSeq - (o.acked + 1) < WINDOW) {
      const wait = lastChunk.current + 1000 / CHUNKS_PER_SECOND - performance.now();
      if (wait > 0) {
        setTimeout(() => pump(id), wait);
        return;
      }
      const chunk = o.data.subarray(o.nextSeq * CHUNK_BYTES, (o.nextSeq + 1) * CHUNK_BYTES);
      if (!send({ type: "file_chunk", transfer: id, seq: o.nextSeq, data: toBase64(chunk) })) return;
      lastChunk.current = performance.now();
      o.nextSeq++;
    }
    if (o.acked + 1 === total) {
      send({ type: "file_end", transfer: id });
      outgoing.current.delete(id);
      update(id, { state: "done", bytes: o.data.length });
    }
  };

  const offer = async (file: File, to: { id: string; name: string }[]) => {
    const data = new Uint8Array(await file.arrayBuffer());
    const hash = await sha256(data);
    const name = file.name.slice(0, MAX_TEXT);
    for (const receiver of to) {
      const id = randomId();
      outgoing.current.set(id, { data, nextSeq: 0, acked: -1 });
      add({ id, direction: "out", peer: receiver.name, name, size: data.length, sha256: hash, bytes: 0, state: "offered" });
      send({ type: "file_offer", transfer: id, to: receiver.id, name, size: data.length, sha256: hash });
    }
  };

  const answer = (id: string, accept: boolean) => {
    send({ type: "file_answer", transfer: id, accept });
    if (accept) {
      incoming.current.set(id, { parts: [] });
      update(id, { state: "receiving" });
    } else {
      update(id, { state: "declined" });
    }
  };

  const take = (data: unknown): boolean => {
    const m = fileMessage(data);
    if (!m) return false;
    const id = m.transfer as string;
    switch (m.type) {
      case "file_offer":
        if (typeof m.name === "string" && typeof m.size === "number" && typeof m.sha256 === "string" && typeof m.from === "string")
          add({ id, direction: "in", peer: m.from.slice(0, MAX_TEXT), name: m.name.slice(0, MAX_TEXT), size: m.size, sha256: m.sha256.slice(0, 64), bytes: 0, state: "offered" });
        break;
      case "file_answer":
        if (m.accept === true) {
          update(id, { state: "sending" });
          pump(id);
        } else {
          outgoing.current.delete(id);
          update(id, { state: "declined" });
        }
        break;
      case "file_ack": {
        const o = outgoing.current.get(id);
        if (o && typeof m.seq === "number" && m.seq > o.acked) {
          o.acked = m.seq;
          update(id, { bytes: Math.min(o.data.length, (o.acked + 1) * CHUNK_BYTES) });
          pump(id);
        }
        break;
      }
      case "file_chunk": {
        const i = incoming.current.get(id);
        if (!i || typeof m.data !== "string" || typeof m.seq !== "number") break;
        const bytes = fromBase64(m.data);
        i.parts.push(bytes);
        setTransfers((all) => all.map((x) => (x.id === id ? { ...x, bytes: x.bytes + bytes.length } : x)));
        send({ type: "file_ack", transfer: id, seq: m.seq });
        break;
      }
      case "file_end": {
        const i = incoming.current.get(id);
        if (!i) break;
        incoming.current.delete(id);
        const blob = new Blob(i.parts);
        blob.arrayBuffer().then(async (buffer) => update(id, { state: "done", received: await sha256(buffer), url: URL.createObjectURL(blob) }));
        break;
      }
      case "file_cancel":
        outgoing.current.delete(id);
        incoming.current.delete(id);
        update(id, { state: "cancelled", reason: typeof m.reason === "string" ? m.reason.slice(0, MAX_TEXT) : undefined });
        break;
    }
    return true;
  };

  const clear = () => {
    outgoing.current.clear();
    incoming.current.clear();
    setTransfers((all) => {
      all.forEach((x) => x.url && URL.revokeObjectURL(x.url));
      return [];
    });
  };

  return { transfers, offer, answer, take, clear };
}

/** The documents card: offer a file to one guest or everyone, and the transfers. */
export function Documents({ others, maxBytes, transfers, offer, answer }: { others: { id: string; name: string }[]; maxBytes: number | null; transfers: Transfer[]; offer: (file: File, to: { id: string; name: string }[]) => void; answer: (id: string, accept: boolean) => void }) {
  const [to, setTo] = useState("*");
  const [tooLarge, setTooLarge] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const submit = (e: Event) => {
    e.preventDefault();
    const file = input.current?.files?.[0];
    if (!file || maxBytes === null) return;
    if (file.size > maxBytes || file.size === 0) return setTooLarge(true);
    setTooLarge(false);
    offer(file, to === "*" ? others : others.filter((o) => o.id === to));
    if (input.current) input.current.value = "";
  };
  return (
    <section class="card documents" aria-labelledby="documents-heading" data-testid="documents">
      <h2 id="documents-heading">{t("guest.documents")}</h2>
      {maxBytes === null ? (
        <p data-testid="documents-off">{t("guest.documents_off")}</p>
      ) : (
        <form onSubmit={submit} class="row">
          <label for="document-file">{t("guest.document_file")}</label>
          <input id="document-file" ref={input} type="file" data-testid="file-input" />
          <label for="document-to">{t("guest.document_to")}</label>
          <select id="document-to" value={to} onChange={(e) => setTo(e.currentTarget.value)} data-testid="file-to">
            <option value="*">{t("guest.everyone")}</option>
            {others.map((o) => (
              <option key={o.id} value={o.id}>
                {o.name}
              </option>
            ))}
          </select>
          <button type="submit" class="big" disabled={others.length === 0} data-testid="file-offer">
            {t("guest.offer_document")}
          </button>
          {tooLarge && <p role="alert">{`${t("guest.document_too_large")} ${formatSize(maxBytes)}`}</p>}
        </form>
      )}
      <ul class="list" data-testid="transfers">
        {transfers.map((x) => (
          <li key={x.id} data-testid="transfer" data-direction={x.direction} data-state={x.state} data-name={x.name} data-size={x.size} data-bytes={x.bytes} data-sha256={x.sha256} data-received={x.received ?? ""} data-peer={x.peer}>
            <span>
              {x.direction === "in" ? `${x.peer}: ` : `→ ${x.peer}: `}
              {x.name} ({formatSize(x.size)})
            </span>
            <progress max={x.size} value={x.bytes} aria-label={`${x.name}: ${formatSize(x.bytes)} / ${formatSize(x.size)}`} />
            <code class="sha256" title="SHA-256">
              SHA-256 {x.sha256}
            </code>
            {x.received && (
              <span class={x.received === x.sha256 ? "badge ok" : "badge warn"} data-testid="file-check">
                {x.received === x.sha256 ? t("guest.document_intact") : t("guest.document_damaged")}
              </span>
            )}
            {x.received && x.received !== x.sha256 && (
              <code class="sha256" data-testid="file-received-hash">
                {`${t("guest.document_received_hash")} ${x.received}`}
              </code>
            )}
            {x.state === "offered" && x.direction === "in" && (
              <span class="row">
                <button type="button" class="primary" onClick={() => answer(x.id, true)} data-testid="file-accept">
                  {t("guest.accept")}
                </button>
                <button type="button" onClick={() => answer(x.id, false)} data-testid="file-decline">
                  {t("guest.decline")}
                </button>
              </span>
            )}
            {x.url && (
              <a href={x.url} download={x.name} data-testid="file-save">
                {t("guest.save")}
              </a>
            )}
            {x.state === "declined" && <span class="badge warn">{t("guest.declined")}</span>}
            {x.state === "cancelled" && <span class="badge warn">{`${t("guest.cancelled")}${x.reason ? `: ${x.reason}` : ""}`}</span>}
          </li>
        ))}
      </ul>
    </section>
  );
}
