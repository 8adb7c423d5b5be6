// The guest join page of a hosted meeting (docs/meetings.md, "the guest API"): camera and
// microphone preview, name and PIN, the lobby, then WHIP (send) and WHEP (receive) with plain
// RTCPeerConnections, and mute / camera / leave.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, setCredentials } from "../api";
import { ErrorBanner, Field, describedBy } from "../components";
import { LangSwitch, t, useLang } from "../i18n";

type Phase = "form" | "lobby" | "joined" | "removed" | "ended" | "left";

/** POSTs an SDP offer to a WHIP/WHEP endpoint and applies the answer (non-trickle ICE). */
async function negotiate(pc: RTCPeerConnection, url: string, token: string) {
  await pc.setLocalDescription(await pc.createOffer());
  // Wait for candidates (at most 2 s): the guest API takes one offer with everything in it.
  await new Promise<void>((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    const done = () => pc.iceGatheringState === "complete" && resolve();
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 2000);
  });
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
    body: pc.localDescription!.sdp,
  });
  if (!response.ok) {
    const e = await response.json().catch(() => ({}));
    throw new ApiError(response.status, e.error ?? "error", e.message ?? response.statusText);
  }
  await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
}

export function Guest({ meetingId }: { meetingId: string }) {
  useLang();
  const [name, setName] = useState(() => localStorage.getItem("roomd.guest.name") ?? "");
  const [pin, setPin] = useState("");
  const [phase, setPhase] = useState<Phase>("form");
  const [error, setError] = useState<ApiError | null>(null);
  const [local, setLocal] = useState<MediaStream | null>(null);
  const [mediaProblem, setMediaProblem] = useState(false);
  const [muted, setMuted] = useState(false);
  const [cameraOff, setCameraOff] = useState(false);
  const guest = useRef<{ id: string; token: string } | null>(null);
  const connections = useRef<RTCPeerConnection[]>([]);
  const preview = useRef<HTMLVideoElement>(null);
  const remote = useRef<HTMLVideoElement>(null);
  const base = `/api/v1/join/${encodeURIComponent(meetingId)}/guests`;

  useEffect(() => {
    navigator.mediaDevices
      ?.getUserMedia({ audio: true, video: { width: 1280, height: 720 } })
      .then(setLocal)
      .catch(() => setMediaProblem(true));
  }, []);
  useEffect(() => {
    if (preview.current && local) preview.current.srcObject = local;
  }, [local, phase]);

  const hangUp = () => {
    connections.current.forEach((pc) => pc.close());
    connections.current = [];
  };

  const connect = async () => {
    const g = guest.current!;
    const receive = new RTCPeerConnection();
    receive.addTransceiver("audio", { direction: "recvonly" });
    receive.addTransceiver("video", { direction: "recvonly" });
    const incoming = new MediaStream();
    receive.ontrack = (e) => {
      incoming.addTrack(e.track);
      if (remote.current) remote.current.srcObject = incoming;
    };
    connections.current = [receive];
    // Without a camera or microphone the guest only watches and listens: nothing to publish.
    if (local && local.getTracks().length > 0) {
      const send = new RTCPeerConnection();
      local.getTracks().forEach((track) => send.addTransceiver(track, { direction: "sendonly", streams: [local] }));
      connections.current.push(send);
      await negotiate(send, `${base}/${g.id}/whip`, g.token);
    }
    await negotiate(receive, `${base}/${g.id}/whep`, g.token);
  };

  // The lobby: ask the room every second whether we are in.
  useEffect(() => {
    if (phase !== "lobby" && phase !== "joined") return;
    const timer = window.setInterval(async () => {
      const g = guest.current;
      if (!g) return;
      try {
        const state = await fetch(`${base}/${g.id}`, { headers: { Authorization: `Bearer ${g.token}` } }).then((r) => r.json());
        if (state.state === "admitted" && phase === "lobby") {
          setPhase("joined");
          connect().catch((e) => setError(e));
        } else if (state.state === "removed" || state.state === "ended") {
          hangUp();
          setPhase(state.state);
        }
      } catch {
        // a missed poll is retried on the next tick
      }
    }, 1000);
    return () => window.clearInterval(timer);
  }, [phase]);

  const join = async (e: Event) => {
    e.preventDefault();
    setError(null);
    localStorage.setItem("roomd.guest.name", name);
    setCredentials({ kind: "none" });
    try {
      // The PIN is optional in the guest API: a meeting without one gets none.
      const answer = await api<{ guest_id: string; token: string; state: string }>("POST", base, pin ? { name, pin } : { name });
      guest.current = { id: answer.guest_id, token: answer.token };
      setPhase(answer.state === "admitted" ? "joined" : "lobby");
      if (answer.state === "admitted") await connect();
    } catch (err) {
      setError(err as ApiError);
    }
  };
  const leave = async () => {
    hangUp();
    const g = guest.current;
    if (g) await fetch(`${base}/${g.id}`, { method: "DELETE", headers: { Authorization: `Bearer ${g.token}` } }).catch(() => undefined);
    setPhase("left");
  };
  const toggleMute = () => {
    local?.getAudioTracks().forEach((track) => (track.enabled = muted));
    setMuted(!muted);
  };
  const toggleCamera = () => {
    local?.getVideoTracks().forEach((track) => (track.enabled = cameraOff));
    setCameraOff(!cameraOff);
  };
  const fieldError = (f: string) => (error?.field === f ? error.message : null);

  return (
    <div class="guest">
      <header class="topbar">
        <h1>{t("guest.title")}</h1>
        {(phase === "joined" || phase === "lobby") && (
          <div class="privacy" role="status">
            <span class={muted ? "badge warn" : "badge ok"}>{muted ? t("privacy.mic_muted") : t("privacy.mic_on")}</span>
            <span class={cameraOff ? "badge warn" : "badge ok"}>{cameraOff ? t("privacy.cam_off") : t("privacy.cam_on")}</span>
          </div>
        )}
        <LangSwitch />
      </header>
      <main id="main" class="guest-grid">
        {phase === "joined" && (
          <figure class="remote">
            <video ref={remote} autoPlay playsInline aria-label={t("guest.room_video")} />
            <figcaption>{t("guest.room_video")}</figcaption>
          </figure>
        )}
        <figure class="self">
          {local ? <video ref={preview} autoPlay playsInline muted aria-label={t("guest.preview")} /> : <div class="preview-empty">{mediaProblem ? t("guest.no_camera") : t("common.loading")}</div>}
          <figcaption>{t("guest.preview")}</figcaption>
        </figure>
        <section class="card">
          {phase === "form" && (
            <form onSubmit={join}>
              <Field id="guest-name" label={t("guest.name")} error={fieldError("name")}>
                <input id="guest-name" autoComplete="name" required maxLength={64} value={name} onInput={(e) => setName(e.currentTarget.value)} {...describedBy("guest-name", fieldError("name"))} />
              </Field>
              <Field id="guest-pin" label={t("guest.pin")} error={fieldError("pin")}>
                <input id="guest-pin" inputMode="numeric" autoComplete="off" value={pin} onInput={(e) => setPin(e.currentTarget.value)} {...describedBy("guest-pin", fieldError("pin"))} />
              </Field>
              <ErrorBanner message={error && !error.field ? error.message : null} />
              <button type="submit" class="big primary" data-testid="guest-join">
                {t("guest.join")}
              </button>
            </form>
          )}
          {phase === "lobby" && <p role="status" data-testid="guest-lobby">{t("guest.lobby")}</p>}
          {phase === "joined" && <p role="status" data-testid="guest-joined">{t("guest.in_meeting")}</p>}
          {phase === "removed" && <p role="status">{t("guest.removed")}</p>}
          {phase === "ended" && <p role="status">{t("guest.ended")}</p>}
          {phase === "left" && <p role="status">{t("guest.left")}</p>}
          {(phase === "lobby" || phase === "joined") && (
            <div class="row">
              <button type="button" class={muted ? "big toggle on warn" : "big toggle"} aria-pressed={muted} onClick={toggleMute}>
                {muted ? t("guest.unmute") : t("guest.mute")}
              </button>
              <button type="button" class={cameraOff ? "big toggle on warn" : "big toggle"} aria-pressed={cameraOff} onClick={toggleCamera}>
                {cameraOff ? t("guest.camera_on") : t("guest.camera_off")}
              </button>
              <button type="button" class="big danger" onClick={leave} data-testid="guest-leave">
                {t("guest.leave")}
              </button>
            </div>
          )}
          {phase === "joined" && error && <ErrorBanner message={error.message} />}
        </section>
      </main>
    </div>
  );
}
