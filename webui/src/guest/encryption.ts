// How the page's own media reaches the room, as the browser measures it (docs/security.md,
// "Hosted and direct meetings"): each connection's state (connected once all its ICE and DTLS
// transports are), read every second, and the SRTP cipher its statistics name once it is (getStats is costly
// with a dozen streams: it is asked once per connection, not every second). Nothing is
// assumed: until every transport is connected and an SRTP cipher is in use, the page does not
// say "encrypted".
import { useEffect, useState } from "preact/hooks";

/** `connecting` until every connection runs SRTP keyed by DTLS; `encrypted` then. */
export type LinkState = "connecting" | "encrypted";

export interface Link {
  state: LinkState;
  /** The SRTP protection profile in use (e.g. AES_CM_128_HMAC_SHA1_80), empty before. */
  cipher: string;
}

const CONNECTING: Link = { state: "connecting", cipher: "" };

/** The SRTP cipher a connection's statistics name for a connected DTLS transport. */
const ciphers = new WeakMap<RTCPeerConnection, string>();

async function srtpCipher(pc: RTCPeerConnection): Promise<string> {
  let cipher = "";
  (await pc.getStats()).forEach((s) => {
    if (s.type === "transport" && s.dtlsState === "connected" && typeof s.srtpCipher === "string") cipher = s.srtpCipher;
  });
  return cipher;
}

/** The transports of `pcs`, measured. */
async function measure(pcs: RTCPeerConnection[]): Promise<Link> {
  const open = pcs.filter((pc) => pc.connectionState !== "closed");
  if (open.length === 0) return CONNECTING;
  let cipher = "";
  for (const pc of open) {
    // "connected": every ICE and DTLS transport the connection uses is connected.
    if (pc.connectionState !== "connected") {
      ciphers.delete(pc);
      return CONNECTING;
    }
    let known = ciphers.get(pc);
    if (!known) {
      known = await srtpCipher(pc);
      if (!known) return CONNECTING;
      ciphers.set(pc, known);
    }
    cipher = known;
  }
  return { state: "encrypted", cipher };
}

/** Follows the encryption of the connections in `connections` while `active`. */
export function useLink(connections: { current: RTCPeerConnection[] }, active: boolean): Link {
  const [link, setLink] = useState<Link>(CONNECTING);
  useEffect(() => {
    if (!active) {
      setLink(CONNECTING);
      return;
    }
    let stopped = false;
    const tick = () =>
      measure(connections.current)
        .then((now) => !stopped && setLink((before) => (before.state === now.state && before.cipher === now.cipher ? before : now)))
        .catch(() => !stopped && setLink(CONNECTING));
    tick();
    const timer = setInterval(tick, 1000);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [active]);
  return link;
}
