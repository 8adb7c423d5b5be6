// The guest join page of a hosted meeting (docs/meetings.md, "the guest API"): camera and
// microphone preview, name and PIN, the lobby, then WHIP (send) and WHEP (receive) with plain
// RTCPeerConnections, the other guests the room forwards (./others.ts), and mute / camera / leave.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, setCredentials } from "../api";
import { ErrorBanner, Field, describedBy } from "../components";
import { LangSwitch, t, useLang } from "../i18n";
import { Chat } from "../chat";
import { Documents, useDocuments } from "./documents";
import { useLink } from "./encryption";
import { addReceivingLines, CHAT_KEPT, ChatLine, Other, Participants, parseChat, parseMuteRequest, parseParticipants, pickWindow, RoomMedia } from "./others";

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

/** What a moderator asks the room for (the guest API's moderation request). */
type Moderate = (action: string, participant?: string) => void;

/** The roles, the lock, the shared window and the documents policy, as the room says. */
type Roles = Omit<Participants, "room" | "slots">;
const NO_ROLES: Roles = { moderator: false, presenter: false, locked: false, lobby: [], windowFrom: null, documentsMaxBytes: null };

/** One other guest's picture and voice, with their name, and whether they talk; a moderator
 * gets the buttons that act on them. Their media is encrypted hop by hop when their link to the
 * room (as the room says) and this page's (as the browser measures) both are. */
function OtherTile({ other, slot, stream, tracks, speaker, moderate, linkEncrypted }: { other: Other; slot: number; stream: MediaStream; tracks: number; speaker: boolean; moderate: Moderate | null; linkEncrypted: boolean }) {
  const video = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    // Set again when tracks arrive: the element takes a stream's tracks when it is given it.
    if (video.current) video.current.srcObject = stream;
  }, [stream, tracks]);
  const classes = ["other", other.talking ? "talking" : "", speaker ? "speaker" : ""].join(" ").trim();
  const encryption = other.encrypted && linkEncrypted ? "hop-by-hop" : "none";
  return (
    <figure class={classes} data-testid="other-guest" data-slot={slot} data-id={other.id} data-name={other.name} data-talking={String(other.talking)} data-audio={other.audio} data-video={other.video} data-hand={String(other.handRaised)} data-moderator={String(other.moderator)} data-presenter={String(other.presenter)} data-encryption={encryption}>
      <video ref={video} autoPlay playsInline aria-label={other.name} />
      <figcaption>
        {other.name}
        {other.moderator && <span class="badge">{t("guest.moderator")}</span>}
        {other.presenter && <span class="badge ok">{t("guest.presenter")}</span>}
        {other.talking && <span class="badge ok">{t("guest.talking")}</span>}
        {other.handRaised && <span class="badge warn">{t("guest.hand_raised")}</span>}
        {other.audio === "off" && <span class="badge warn">{t("privacy.mic_muted")}</span>}
        {other.video === "off" && <span class="badge warn">{t("privacy.cam_off")}</span>}
        {encryption === "hop-by-hop" ? (
          <span class="badge" title={t("guest.not_end_to_end")}>
            {t("guest.encrypted_via_room")}
          </span>
        ) : (
          <span class="badge warn">{t("guest.not_encrypted_yet")}</span>
        )}
      </figcaption>
      {moderate && (
        <div class="row tile-actions">
          <button type="button" onClick={() => moderate("ask_to_mute", other.id)} data-testid="ask-mute" aria-label={`${t("guest.ask_mute")}: ${other.name}`}>
            {t("guest.ask_mute")}
          </button>
          {other.presenter ? (
            <button type="button" onClick={() => moderate("take_presenter")} data-testid="take-presenter" aria-label={`${t("guest.take_presenter")}: ${other.name}`}>
              {t("guest.take_presenter")}
            </button>
          ) : (
            <button type="button" onClick={() => moderate("grant_presenter", other.id)} data-testid="make-presenter" aria-label={`${t("guest.make_presenter")}: ${other.name}`}>
              {t("guest.make_presenter")}
            </button>
          )}
          {!other.moderator && (
            <button type="button" class="danger" onClick={() => moderate("remove", other.id)} data-testid="remove" aria-label={`${t("guest.remove")}: ${other.name}`}>
              {t("guest.remove")}
            </button>
          )}
        </div>
      )}
    </figure>
  );
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
  // Read when connecting, which runs from timers set up before the camera may have come: a ref,
  // so that they see the camera once it is there.
  const localRef = useRef<MediaStream | null>(null);
  const publishing = useRef(false);
  // The WHIP connection's senders: muting stops the sender, so that nothing of it is sent at all
  // and the room (and through it everyone) sees it off; a disabled track alone still sends
  // silence and black frames.
  const senders = useRef<Partial<Record<"audio" | "video", RTCRtpSender>>>({});
  const heldBack = useRef({ audio: false, video: false });
  const preview = useRef<HTMLVideoElement>(null);
  const remote = useRef<HTMLVideoElement>(null);
  // The WHEP connection's streams (0: the room, then the relay slots), who each slot shows,
  // and the last one heard talking (shown largest).
  const [streams, setStreams] = useState<MediaStream[]>([]);
  const [contentStream, setContentStream] = useState<MediaStream | null>(null);
  const content = useRef<HTMLVideoElement>(null);
  const [tracks, setTracks] = useState(0);
  const [others, setOthers] = useState<(Other | null)[]>([]);
  const [speaker, setSpeaker] = useState<string | null>(null);
  const [roomMedia, setRoomMedia] = useState<RoomMedia | null>(null);
  const link = useLink(connections, phase === "joined");
  const [handRaised, setHandRaised] = useState(false);
  const [chat, setChat] = useState<ChatLine[]>([]);
  const [roles, setRoles] = useState<Roles>(NO_ROLES);
  // Who asked this guest to mute, until they answer.
  const [muteAsked, setMuteAsked] = useState<string | null>(null);
  // The window this guest shares (the presenter), and the WHIP line that carries it: offered
  // from the start without a track, so that sharing needs no renegotiation.
  const [sharing, setSharing] = useState<MediaStream | null>(null);
  const windowSender = useRef<RTCRtpSender | null>(null);
  const sharedPreview = useRef<HTMLVideoElement>(null);
  const documents = useDocuments((message) => {
    if (channel.current?.readyState !== "open") return false;
    channel.current.send(JSON.stringify(message));
    return true;
  });
  // The WHEP connection's data channel: the room's participant list comes in, the hand goes out.
  const channel = useRef<RTCDataChannel | null>(null);
  // Read by the channel's open handler, set up before the guest may have raised it.
  const handRef = useRef(false);
  const base = `/api/v1/join/${encodeURIComponent(meetingId)}/guests`;

  useEffect(() => {
    navigator.mediaDevices
      ?.getUserMedia({ audio: true, video: { width: 1280, height: 720 } })
      .then((stream) => {
        localRef.current = stream;
        setLocal(stream);
      })
      .catch(() => setMediaProblem(true));
  }, []);
  useEffect(() => {
    if (preview.current && local) preview.current.srcObject = local;
  }, [local, phase]);

  useEffect(() => {
    if (remote.current && streams[0]) remote.current.srcObject = streams[0];
  }, [streams, tracks, phase]);
  useEffect(() => {
    if (content.current && contentStream) content.current.srcObject = contentStream;
  }, [contentStream, tracks, roomMedia?.sharing, roles.windowFrom]);
  useEffect(() => {
    if (sharedPreview.current && sharing) sharedPreview.current.srcObject = sharing;
  }, [sharing]);
  // Only the presenter shares: the role taken back ends the share (the room drops it anyway).
  useEffect(() => {
    if (!roles.presenter && sharing) stopSharing();
  }, [roles.presenter]);

  const hangUp = () => {
    connections.current.forEach((pc) => pc.close());
    connections.current = [];
    publishing.current = false;
    senders.current = {};
    // Nothing of the meeting stays on the screen.
    setOthers([]);
    setStreams([]);
    setContentStream(null);
    setSpeaker(null);
    setRoomMedia(null);
    channel.current = null;
    // The chat is gone from the screen with the meeting.
    setChat([]);
    setRoles(NO_ROLES);
    setMuteAsked(null);
    documents.clear();
    setSharing((stream) => {
      stream?.getTracks().forEach((track) => track.stop());
      return null;
    });
    windowSender.current = null;
  };
  const stopSharing = () => {
    windowSender.current?.replaceTrack(null).catch(() => undefined);
    setSharing((stream) => {
      stream?.getTracks().forEach((track) => track.stop());
      return null;
    });
  };
  const shareWindow = async () => {
    try {
      const stream = await pickWindow();
      const track = stream.getVideoTracks()[0];
      if (!track || !windowSender.current) {
        stream.getTracks().forEach((t) => t.stop());
        return;
      }
      track.contentHint = "detail";
      // The browser's own "stop sharing" ends the track.
      track.addEventListener("ended", stopSharing);
      await windowSender.current.replaceTrack(track);
      setSharing(stream);
    } catch (e) {
      // The person closed the picker: nothing is shared, nothing to say.
      if ((e as DOMException)?.name !== "NotAllowedError") setError(e as ApiError);
    }
  };
  const moderate: Moderate = (action, participant) => {
    const g = guest.current;
    if (!g) return;
    const body = participant ? { action, participant } : { action };
    fetch(`${base}/${g.id}/moderation`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${g.token}` },
      body: JSON.stringify(body),
    })
      .then(async (response) => {
        if (response.ok) return;
        const e = await response.json().catch(() => ({}));
        setError(new ApiError(response.status, e.error ?? "error", e.message ?? response.statusText));
      })
      .catch((e) => setError(e));
  };
  const sendChat = (text: string) => {
    if (channel.current?.readyState === "open") channel.current.send(JSON.stringify({ type: "chat", text }));
  };
  const toggleHand = () => {
    const raised = !handRaised;
    handRef.current = raised;
    setHandRaised(raised);
    if (channel.current?.readyState === "open") channel.current.send(JSON.stringify({ type: "hand", raised }));
  };

  const connect = async () => {
    const g = guest.current!;
    const receive = new RTCPeerConnection();
    const incoming = addReceivingLines(receive);
    receive.addEventListener("track", () => setTracks((n) => n + 1));
    setStreams(incoming.people);
    setContentStream(incoming.content);
    const roster = receive.createDataChannel("roomd");
    channel.current = roster;
    roster.onopen = () => roster.send(JSON.stringify({ type: "hand", raised: handRef.current }));
    roster.onmessage = (e) => {
      const line = parseChat(e.data);
      if (line) return setChat((all) => [...all, line].slice(-CHAT_KEPT));
      if (documents.take(e.data)) return;
      const askedBy = parseMuteRequest(e.data);
      if (askedBy) return setMuteAsked(askedBy);
      const participants = parseParticipants(e.data);
      if (!participants) return;
      const slots = participants.slots;
      setOthers(slots);
      setRoomMedia(participants.room);
      const { room: _room, slots: _slots, ...roles } = participants;
      setRoles(roles);
      const talking = slots.find((o) => o?.talking);
      if (talking) setSpeaker(talking.name);
    };
    connections.current = [receive];
    await publish();
    await negotiate(receive, `${base}/${g.id}/whep`, g.token);
  };

  // Sends the camera and microphone by WHIP, once: without them (not there yet, or refused) the
  // guest watches and listens, and publishes when they come.
  const publish = async () => {
    const g = guest.current;
    const media = localRef.current;
    if (!g || !media || media.getTracks().length === 0 || publishing.current) return;
    publishing.current = true;
    const send = new RTCPeerConnection();
    media.getTracks().forEach((track) => {
      const kind = track.kind === "audio" ? "audio" : "video";
      const { sender } = send.addTransceiver(track, { direction: "sendonly", streams: [media] });
      senders.current[kind] = sender;
    });
    windowSender.current = send.addTransceiver("video", { direction: "sendonly" }).sender;
    connections.current.push(send);
    await negotiate(send, `${base}/${g.id}/whip`, g.token);
    // Muted before the connection existed: it starts muted.
    for (const kind of ["audio", "video"] as const) if (heldBack.current[kind]) await sending(kind, false);
  };
  useEffect(() => {
    if (phase === "joined" && local && connections.current.length > 0) publish().catch((e) => setError(e));
  }, [local, phase]);

  // The lobby: ask the room every second whether we are in.
  useEffect(() => {
    if (phase !== "lobby" && phase !== "joined") return;
    const timer = window.setInterval(async () => {
      const g = guest.current;
      if (!g) return;
      try {
        const response = await fetch(`${base}/${g.id}`, { headers: { Authorization: `Bearer ${g.token}` } });
        // Once the room has ended the meeting, it no longer knows it (nor its guests).
        const state = response.status === 404 ? { state: "ended" } : await response.json();
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
  /** Turns the WHIP sender of `kind` on or off (its encoding `active`: no renegotiation). */
  const sending = async (kind: "audio" | "video", on: boolean) => {
    const sender = senders.current[kind];
    if (!sender) return;
    const parameters = sender.getParameters();
    parameters.encodings.forEach((encoding) => (encoding.active = on));
    await sender.setParameters(parameters);
  };
  /** Stops (`off`) or resumes sending `kind`; the preview follows. */
  const send = (kind: "audio" | "video", off: boolean) => {
    heldBack.current[kind] = off;
    local?.getTracks().forEach((track) => {
      if (track.kind === kind) track.enabled = !off;
    });
    sending(kind, !off).catch((e) => setError(e));
  };
  const toggleMute = () => {
    send("audio", !muted);
    setMuted(!muted);
  };
  const muteOnRequest = () => {
    if (!muted) toggleMute();
    setMuteAsked(null);
  };
  const toggleCamera = () => {
    send("video", !cameraOff);
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
      <main id="main" class={phase === "joined" && others.some(Boolean) ? "guest-grid with-others" : "guest-grid"}>
        {phase === "joined" && (
          <figure class="remote">
            <video ref={remote} autoPlay playsInline aria-label={t("guest.room_video")} />
            <figcaption class="room-caption">
              {t("guest.room_video")}
              {roomMedia?.muted && (
                <span class="badge warn" data-testid="room-muted">
                  {t("privacy.mic_muted")}
                </span>
              )}
              {roomMedia?.cameraOff && (
                <span class="badge warn" data-testid="room-camera-off">
                  {t("privacy.cam_off")}
                </span>
              )}
            </figcaption>
          </figure>
        )}
        {phase === "joined" && (roomMedia?.sharing || roles.windowFrom) && (
          <figure class="content" data-testid="room-content" data-from={roles.windowFrom ?? ""}>
            <video ref={content} autoPlay playsInline muted aria-label={roles.windowFrom ? `${t("guest.window_of")} ${roles.windowFrom}` : t("guest.room_content")} />
            <figcaption>{roles.windowFrom ? `${t("guest.window_of")} ${roles.windowFrom}` : t("guest.room_content")}</figcaption>
          </figure>
        )}
        {phase === "joined" && sharing && (
          <figure class="content own-share" data-testid="own-share">
            <video ref={sharedPreview} autoPlay playsInline muted aria-label={t("guest.you_share")} />
            <figcaption>{t("guest.you_share")}</figcaption>
          </figure>
        )}
        {phase === "joined" &&
          others.map(
            (other, slot) =>
              other && streams[slot + 1] && <OtherTile key={slot} other={other} slot={slot + 1} stream={streams[slot + 1]} tracks={tracks} speaker={other.name === speaker} moderate={roles.moderator ? moderate : null} linkEncrypted={link.state === "encrypted"} />,
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
          {phase === "joined" && (
            <p data-testid="guest-encryption" data-link={link.state} data-cipher={link.cipher}>
              {link.state === "encrypted" ? (
                <span class="badge ok">{`${t("guest.link_encrypted")} (DTLS-SRTP, ${link.cipher})`}</span>
              ) : (
                <span class="badge warn">{t("guest.not_encrypted_yet")}</span>
              )}{" "}
              {t("guest.not_end_to_end")}
            </p>
          )}
          {phase === "joined" && (roles.moderator || roles.presenter) && (
            <p class="row" data-testid="guest-roles" data-moderator={String(roles.moderator)} data-presenter={String(roles.presenter)}>
              {roles.moderator && <span class="badge">{t("guest.you_moderate")}</span>}
              {roles.presenter && <span class="badge ok">{t("guest.you_present")}</span>}
            </p>
          )}
          {phase === "joined" && muteAsked && (
            <div role="alert" class="banner" data-testid="mute-request">
              <p>
                {muteAsked} {t("guest.mute_request")}
              </p>
              <div class="row">
                <button type="button" class="big primary" onClick={muteOnRequest} data-testid="mute-request-accept">
                  {t("guest.mute_request_accept")}
                </button>
                <button type="button" class="big" onClick={() => setMuteAsked(null)}>
                  {t("guest.dismiss")}
                </button>
              </div>
            </div>
          )}
          {phase === "removed" && <p role="status">{t("guest.removed")}</p>}
          {phase === "ended" && <p role="status">{t("guest.ended")}</p>}
          {phase === "left" && <p role="status">{t("guest.left")}</p>}
          {(phase === "lobby" || phase === "joined") && (
            <div class="row">
              <button type="button" class={muted ? "big toggle on warn" : "big toggle"} aria-pressed={muted} onClick={toggleMute} data-testid="guest-mute">
                {muted ? t("guest.unmute") : t("guest.mute")}
              </button>
              <button type="button" class={cameraOff ? "big toggle on warn" : "big toggle"} aria-pressed={cameraOff} onClick={toggleCamera} data-testid="guest-camera">
                {cameraOff ? t("guest.camera_on") : t("guest.camera_off")}
              </button>
              {phase === "joined" && roles.presenter && (
                <button type="button" class={sharing ? "big toggle on" : "big toggle"} aria-pressed={sharing !== null} onClick={() => (sharing ? stopSharing() : shareWindow())} data-testid="guest-share">
                  {sharing ? t("guest.stop_share") : t("guest.share_window")}
                </button>
              )}
              {phase === "joined" && (
                <button type="button" class={handRaised ? "big toggle on" : "big toggle"} aria-pressed={handRaised} onClick={toggleHand} data-testid="guest-hand">
                  {handRaised ? t("guest.lower_hand") : t("guest.raise_hand")}
                </button>
              )}
              <button type="button" class="big danger" onClick={leave} data-testid="guest-leave">
                {t("guest.leave")}
              </button>
            </div>
          )}
          {phase === "joined" && error && <ErrorBanner message={error.message} />}
        </section>
        {phase === "joined" && roles.moderator && (
          <section class="card" aria-labelledby="moderation-heading" data-testid="moderation">
            <h2 id="moderation-heading">{t("guest.moderation")}</h2>
            {roles.locked && (
              <p class="badge warn" data-testid="meeting-locked">
                {t("guest.locked")}
              </p>
            )}
            <h3>{t("guest.lobby_waiting")}</h3>
            {roles.lobby.length === 0 ? (
              <p>{t("guest.lobby_empty")}</p>
            ) : (
              <ul class="list" data-testid="moderation-lobby">
                {roles.lobby.map((waiting) => (
                  <li key={waiting.id} data-id={waiting.id} data-name={waiting.name}>
                    {waiting.name}
                    <button type="button" class="primary" onClick={() => moderate("admit", waiting.id)} data-testid="moderation-admit" aria-label={`${t("guest.admit")}: ${waiting.name}`}>
                      {t("guest.admit")}
                    </button>
                  </li>
                ))}
              </ul>
            )}
            <div class="row">
              <button type="button" class="big toggle" aria-pressed={roles.locked} onClick={() => moderate(roles.locked ? "unlock" : "lock")} data-testid="moderation-lock">
                {roles.locked ? t("guest.unlock") : t("guest.lock")}
              </button>
              <button type="button" class="big danger" onClick={() => moderate("end")} data-testid="moderation-end">
                {t("guest.end_for_all")}
              </button>
            </div>
          </section>
        )}
        {phase === "joined" && (
          <Documents
            others={others.flatMap((o) => (o ? [{ id: o.id, name: o.name }] : []))}
            maxBytes={roles.documentsMaxBytes}
            transfers={documents.transfers}
            offer={(file, to) => documents.offer(file, to).catch((e) => setError(e))}
            answer={documents.answer}
          />
        )}
        {phase === "joined" && (
          <Chat
            prefix="chat"
            heading="h2"
            messages={chat.map((line, n) => ({ key: n, from: line.from, label: line.fromRoom ? `${line.from} (${t("guest.room_video")})` : line.from, text: line.text }))}
            onSend={sendChat}
          />
        )}
      </main>
    </div>
  );
}
