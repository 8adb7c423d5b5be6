// The touch panel: a paired panel (room-control token) drives the room; live state comes over
// the events WebSocket. Built for a finger at 1280×800 and 1920×1080: every target ≥ 48 px.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, command, setCredentials, useRoom, type RoomEvent, type Status } from "../api";
import { ErrorBanner, PrivacyBar } from "../components";
import { LangSwitch, t, useLang, type Key } from "../i18n";
import { Pairing } from "./Pairing";
import { Meeting } from "./Meeting";
import { JoinForm } from "./JoinForm";

const TOKEN_KEY = "roomd.panel.token";
const PRESETS_KEY = "roomd.panel.presets";

export function Panel() {
  const [token, setToken] = useState<string | null>(() => localStorage.getItem(TOKEN_KEY));
  const [checked, setChecked] = useState(false);
  useEffect(() => {
    // A revoked token (an admin removed this panel) sends the panel back to pairing.
    const unpair = () => {
      localStorage.removeItem(TOKEN_KEY);
      setCredentials({ kind: "none" });
      setChecked(false);
      setToken(null);
    };
    window.addEventListener("roomd:unauthorized", unpair);
    return () => window.removeEventListener("roomd:unauthorized", unpair);
  }, []);
  useEffect(() => {
    if (!token) return;
    setCredentials({ kind: "token", token });
    // A revoked token sends the panel back to pairing.
    api("GET", "/api/v1/session")
      .then(() => setChecked(true))
      .catch((e: ApiError) => e.status !== 401 && setChecked(true));
  }, [token]);
  if (!token)
    return (
      <Pairing
        onPaired={(t) => {
          localStorage.setItem(TOKEN_KEY, t);
          setToken(t);
        }}
      />
    );
  if (!checked) return <main class="panel" id="main"><p>{t("common.loading")}</p></main>;
  return <PanelHome />;
}

function PanelHome() {
  useLang();
  const [presets, setPresets] = useState<string[]>(() => JSON.parse(localStorage.getItem(PRESETS_KEY) ?? "[]"));
  const onEvent = (e: RoomEvent) => {
    if (e.name === "video.camera.preset.saved") {
      const name = (e.data as { name?: string })?.name;
      if (name) setPresets((p) => (p.includes(name) ? p : [...p, name]));
    }
  };
  useEffect(() => localStorage.setItem(PRESETS_KEY, JSON.stringify(presets)), [presets]);
  const { status, live } = useRoom(true, onEvent);
  const [error, setError] = useState<string | null>(null);
  const run = async (name: string, args: Record<string, unknown> = {}) => {
    setError(null);
    try {
      await command(name, args);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  if (!status) return <main class="panel" id="main"><p>{t("common.loading")}</p></main>;
  const standby = status.standby?.state === "on";
  return (
    <div class="panel">
      <header class="topbar">
        <h1>{status.system?.name ?? "roomd"}</h1>
        <PrivacyBar status={status} />
        <span class={live ? "live on" : "live"} role="status">
          {live ? t("common.connected") : t("common.disconnected")}
        </span>
        <LangSwitch />
      </header>
      <ErrorBanner message={error} />
      <IncomingCall incoming={status.sip?.incoming} run={run} />
      {standby ? (
        <main id="main" class="standby">
          <button class="wake" type="button" onClick={() => run("standby.deactivate")} data-testid="wake">
            <span class="standby-title">{t("panel.standby")}</span>
            <span>{t("panel.wake")}</span>
          </button>
        </main>
      ) : (
        <main id="main" class="panel-grid">
          <section class="card" aria-labelledby="meeting-heading">
            <h2 id="meeting-heading">{t("panel.meeting_state")}</h2>
            {status.meeting === undefined ? (
              <p data-testid="meetings-unavailable">{t("panel.meetings_unavailable")}</p>
            ) : ["idle", "failed"].includes(status.meeting.state) ? (
              <JoinForm meeting={status.meeting} run={run} />
            ) : (
              <Meeting meeting={status.meeting} run={run} />
            )}
          </section>
          <RoomControls status={status} run={run} presets={presets} />
        </main>
      )}
    </div>
  );
}

type Run = (name: string, args?: Record<string, unknown>) => Promise<void>;

/** A SIP call that rings (status.sip.incoming): who calls, answer or decline. */
function IncomingCall({ incoming, run }: { incoming?: { display_name?: string; uri?: string } | null; run: Run }) {
  if (!incoming) return null;
  return (
    <div class="card incoming" role="alert" data-testid="incoming-call">
      <p>
        <strong>{t("panel.incoming")}:</strong>{" "}
        <span data-testid="incoming-caller">{incoming.display_name || incoming.uri}</span>
        {incoming.display_name && <> <code>{incoming.uri}</code></>}
      </p>
      <button type="button" class="big primary" onClick={() => run("meeting.answer")} data-testid="incoming-answer">
        {t("panel.accept")}
      </button>{" "}
      <button type="button" class="big" onClick={() => run("meeting.decline")} data-testid="incoming-decline">
        {t("panel.decline")}
      </button>
    </div>
  );
}

function RoomControls({ status, run, presets }: { status: Status; run: Run; presets: string[] }) {
  const muted = status.audio?.microphones?.muted === true;
  const cameraOn = status.video?.camera?.state !== "off";
  const sharing = status.video?.content?.state === "active";
  const selfview = status.video?.selfview?.mode === "on";
  const layout: string = status.video?.layout ?? "speaker";
  const position = status.video?.camera?.position ?? { pan: 0, tilt: 0, zoom: 100 };
  const [volume, setVolume] = useState<number>(status.audio?.volume ?? 50);
  const [presetName, setPresetName] = useState("");
  useEffect(() => setVolume(status.audio?.volume ?? 50), [status.audio?.volume]);
  const move = (d: { pan?: number; tilt?: number; zoom?: number }) => {
    const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));
    run("video.camera.position.set", {
      pan: clamp(position.pan + (d.pan ?? 0), -100, 100),
      tilt: clamp(position.tilt + (d.tilt ?? 0), -100, 100),
      zoom: clamp(position.zoom + (d.zoom ?? 0), 100, 400),
    });
  };
  return (
    <>
      <section class="card controls" aria-labelledby="controls-heading">
        <h2 id="controls-heading" class="visually-hidden">{t("panel.camera")}</h2>
        <div class="row">
          <button
            type="button"
            class={muted ? "big toggle on warn" : "big toggle"}
            aria-pressed={muted}
            data-testid="mute"
            onClick={() => run(muted ? "audio.microphones.unmute" : "audio.microphones.mute")}
          >
            {muted ? t("panel.unmute") : t("panel.mute")}
          </button>
          <button
            type="button"
            class={cameraOn ? "big toggle" : "big toggle on warn"}
            aria-pressed={!cameraOn}
            data-testid="camera"
            onClick={() => run(cameraOn ? "video.camera.off" : "video.camera.on")}
          >
            {cameraOn ? t("panel.camera_off") : t("panel.camera_on")}
          </button>
          <button type="button" class={sharing ? "big toggle on" : "big toggle"} aria-pressed={sharing} onClick={() => run(sharing ? "video.content.stop" : "video.content.start")}>
            {sharing ? t("panel.stop_share") : t("panel.share")}
          </button>
          <button type="button" class={selfview ? "big toggle on" : "big toggle"} aria-pressed={selfview} onClick={() => run("video.selfview.set", { mode: selfview ? "off" : "on" })}>
            {t("panel.selfview")}
          </button>
          <button type="button" class="big" data-testid="standby" onClick={() => run("standby.activate")}>
            {t("panel.standby")}
          </button>
        </div>
        <div class="volume">
          <label for="volume">{t("panel.volume")}</label>
          <input
            id="volume"
            type="range"
            min={0}
            max={100}
            step={5}
            value={volume}
            onInput={(e) => setVolume(Number(e.currentTarget.value))}
            onChange={(e) => run("audio.volume.set", { level: Number(e.currentTarget.value) })}
          />
          <output for="volume">{volume}</output>
        </div>
        <fieldset class="segmented">
          <legend>{t("panel.layout")}</legend>
          {(["speaker", "grid", "presentation", "single"] as const).map((l) => (
            <button type="button" class={l === layout ? "chip active" : "chip"} aria-pressed={l === layout} onClick={() => run("video.layout.set", { layout: l })}>
              {t(`panel.layout.${l}` as Key)}
            </button>
          ))}
        </fieldset>
      </section>
      <section class="card camera" aria-labelledby="camera-heading">
        <h2 id="camera-heading">{t("panel.camera")}</h2>
        <div class="ptz">
          <button type="button" class="big" data-area="up" aria-label={t("panel.tilt_up")} onClick={() => move({ tilt: 10 })}>▲</button>
          <button type="button" class="big" data-area="left" aria-label={t("panel.pan_left")} onClick={() => move({ pan: -10 })}>◀</button>
          <button type="button" class="big" data-area="right" aria-label={t("panel.pan_right")} onClick={() => move({ pan: 10 })}>▶</button>
          <button type="button" class="big" data-area="down" aria-label={t("panel.tilt_down")} onClick={() => move({ tilt: -10 })}>▼</button>
          <button type="button" class="big" data-area="zin" aria-label={t("panel.zoom_in")} onClick={() => move({ zoom: 25 })}>+</button>
          <button type="button" class="big" data-area="zout" aria-label={t("panel.zoom_out")} onClick={() => move({ zoom: -25 })}>−</button>
        </div>
        <p class="muted-text">
          pan {position.pan} · tilt {position.tilt} · zoom {position.zoom}%
        </p>
        <h3>{t("panel.presets")}</h3>
        <div class="row wrap">
          {presets.map((p) => (
            <button type="button" class="chip" onClick={() => run("video.camera.preset.recall", { name: p })}>
              {p}
            </button>
          ))}
        </div>
        <form
          class="row"
          onSubmit={(e) => {
            e.preventDefault();
            if (presetName) run("video.camera.preset.save", { name: presetName }).then(() => setPresetName(""));
          }}
        >
          <label for="preset-name" class="visually-hidden">{t("panel.save_preset")}</label>
          <input id="preset-name" placeholder={t("panel.save_preset")} value={presetName} pattern="[a-z0-9-]{1,32}" onInput={(e) => setPresetName(e.currentTarget.value)} />
          <button type="submit" class="big">{t("common.save")}</button>
        </form>
      </section>
    </>
  );
}
