// In a meeting: state, encryption, participants with talking/encryption badges, the lobby with
// admit/remove (the panel's "incoming" calls: guests asking to join a hosted meeting), leave.
// Every badge shows what status measured. In an end-to-end encrypted meeting each participant
// shows whether the room holds end-to-end keys with them and whether (and how) they are
// verified, from status.meeting.e2ee; an unverified one shows the short authentication string
// to read aloud, and the people confirm it here when it matched (meeting.e2ee_confirm).
import { Chat } from "../chat";
import { t, type Key } from "../i18n";

type Run = (name: string, args?: Record<string, unknown>) => Promise<void>;
type Participant = { id: string; name: string; state: string; audio: string; video: string; talking: boolean; hand_raised?: boolean; encryption: string };

type E2eeParticipant = { id: string; e2ee: boolean; verified: boolean; verified_by: string; certificate_name: string; sas: string; sas_confirmed_by: string; frames?: string };

/** A participant's end-to-end encryption and verification, as status.meeting.e2ee has them. */
function E2eeBadges({ p, run }: { p: E2eeParticipant | undefined; run: Run }) {
  if (!p) return <span class="badge warn" data-testid="participant-e2ee" data-e2ee="false">{t("panel.hop_by_hop")}</span>;
  return (
    <>
      <span class={p.e2ee ? "badge ok" : "badge warn"} data-testid="participant-e2ee" data-e2ee={p.e2ee ? "true" : "false"}>
        {p.e2ee ? t("panel.e2ee") : t("panel.hop_by_hop")}
      </span>
      {p.e2ee && p.frames === "refused" && (
        <span class="badge warn" data-testid="participant-frames" data-frames="refused">
          {t("panel.frames_refused")}
        </span>
      )}
      <span class={p.verified ? "badge ok" : "badge warn"} data-testid="participant-identity" data-verified-by={p.verified ? p.verified_by : ""}>
        {p.verified_by === "certificate" && p.verified
          ? `${t("panel.verified_certificate")} ${p.certificate_name}`
          : p.verified_by === "sas" && p.verified
            ? t("panel.verified_sas")
            : t("panel.unverified")}
      </span>
      {!p.verified && p.sas && (
        <span class="sas">
          {t("panel.sas")} <code data-testid="participant-sas">{p.sas}</code>{" "}
          {p.sas_confirmed_by ? (
            <span data-testid="sas-waiting">{t("panel.sas_waiting")}</span>
          ) : (
            <button type="button" class="big" data-testid="confirm-sas" data-participant={p.id} onClick={() => run("meeting.e2ee_confirm", { participant: p.id })}>
              {t("panel.sas_matches")}
            </button>
          )}
        </span>
      )}
    </>
  );
}

/** Who presents in a call with floor control (status.meeting.content_floor, from BFCP): shown
 * while someone holds the floor; nothing without floor control or while it is free. */
function ContentFloor({ floor }: { floor: string | undefined }) {
  if (floor !== "room" && floor !== "far-end") return null;
  return (
    <p>
      <span class="badge ok" data-testid="content-floor" data-floor={floor}>
        {floor === "room" ? t("panel.presenting_room") : t("panel.presenting_far_end")}
      </span>
    </p>
  );
}

const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];

/** A connected SIP call: a keypad that sends each tone as it is tapped (a bridge's PIN), and
 * hold/resume as status says the call is. */
function SipControls({ onHold, farEndOnHold, run }: { onHold: boolean; farEndOnHold: boolean; run: Run }) {
  return (
    <div class="sip-controls">
      <div class="keypad" role="group" aria-label={t("panel.keypad")} data-testid="keypad">
        {KEYS.map((key) => (
          <button type="button" class="big" data-testid={`key-${key}`} onClick={() => run("meeting.dtmf", { digits: key })}>
            {key}
          </button>
        ))}
      </div>
      <p>
        {onHold && (
          <span class="badge warn" data-testid="on-hold">
            {t("panel.on_hold")}
          </span>
        )}{" "}
        {farEndOnHold && (
          <span class="badge warn" data-testid="far-end-on-hold">
            {t("panel.far_end_on_hold")}
          </span>
        )}{" "}
        <button type="button" class="big" data-testid={onHold ? "resume" : "hold"} onClick={() => run(onHold ? "meeting.resume" : "meeting.hold")}>
          {onHold ? t("panel.resume") : t("panel.hold")}
        </button>
      </p>
    </div>
  );
}

/** What status measured: DTLS-SRTP (WebRTC, SIP) or SDES-SRTP (SIP) both encrypt the media. */
const encrypted = (p: Participant) => p.encryption === "dtls-srtp" || p.encryption === "sdes-srtp";

/** A guest's roles with the buttons that change them: moderator, presenter, and the request
 * to mute (a request: the guest's page asks them; the room mutes nobody). */
function GuestRoles({ p, moderation, run }: { p: Participant; moderation: { moderators: string[]; presenter: string | null }; run: Run }) {
  const moderator = moderation.moderators.includes(p.id);
  const presenter = moderation.presenter === p.id;
  return (
    <span class="row" data-testid="guest-roles" data-moderator={String(moderator)} data-presenter={String(presenter)}>
      {moderator && <span class="badge">{t("guest.moderator")}</span>}
      {presenter && <span class="badge ok">{t("guest.presenter")}</span>}
      <button type="button" class="big" data-testid="moderator" data-participant={p.id} onClick={() => run(moderator ? "meeting.moderator.revoke" : "meeting.moderator.grant", { participant: p.id })}>
        {moderator ? t("panel.revoke_moderator") : t("panel.make_moderator")}
      </button>
      <button type="button" class="big" data-testid="presenter" data-participant={p.id} onClick={() => run(presenter ? "meeting.presenter.clear" : "meeting.presenter.set", presenter ? {} : { participant: p.id })}>
        {presenter ? t("panel.take_presenter") : t("panel.make_presenter")}
      </button>
      <button type="button" class="big" data-testid="ask-mute" data-participant={p.id} onClick={() => run("meeting.ask_mute", { participant: p.id })}>
        {t("panel.ask_mute")}
      </button>
    </span>
  );
}

/** A message of status.meeting.chat. */
type ChatMessage = { seq: number; from: string; from_room: boolean; text: string };

export function Meeting({ meeting, run }: { meeting: any; run: Run }) {
  const participants: Participant[] = meeting.participants ?? [];
  const lobby = participants.filter((p) => p.state === "lobby");
  const inside = participants.filter((p) => p.state !== "lobby");
  const e2ee = meeting.e2ee ?? { state: "off", participants: [] };
  const e2eeOf = (id: string): E2eeParticipant | undefined => (e2ee.participants ?? []).find((p: E2eeParticipant) => p.id === id);
  // Roles exist in a meeting this room hosts (status.meeting.moderation).
  const hosted = meeting.target?.kind === "hosted";
  const moderation: { locked: boolean; moderators: string[]; presenter: string | null } = meeting.moderation ?? { locked: false, moderators: [], presenter: null };
  return (
    <div class="meeting" data-testid="meeting">
      <p class="meeting-state" role="status" data-state={meeting.state}>
        {t(`panel.state.${meeting.state}` as Key) ?? meeting.state}{" "}
        <span class={meeting.encrypted ? "badge ok" : "badge warn"} data-testid="meeting-encryption" data-encrypted={meeting.encrypted ? "true" : "false"}>{meeting.encrypted ? t("panel.encrypted") : t("panel.not_encrypted")}</span>
        {e2ee.state !== "off" && (
          <span class={e2ee.state === "established" ? "badge ok" : "badge warn"} data-testid="meeting-e2ee" data-e2ee={e2ee.state}>
            {e2ee.state === "established" ? t("panel.e2ee") : t("panel.e2ee_pending")}
          </span>
        )}
      </p>
      {meeting.join_url && (
        <p>
          {t("panel.join_url")} <code data-testid="join-url">{meeting.join_url}</code>
        </p>
      )}
      {lobby.length > 0 && (
        <div class="incoming" role="alert">
          <h3>{t("panel.incoming")}</h3>
          <ul class="list">
            {lobby.map((p) => (
              <li class="participant">
                <span>{p.name}</span>
                <button type="button" class="big primary" data-testid="admit" onClick={() => run("meeting.admit", { participant: p.id })}>
                  {t("panel.admit")}
                </button>
                <button type="button" class="big" onClick={() => run("meeting.remove", { participant: p.id })}>
                  {t("panel.decline")}
                </button>
              </li>
            ))}
          </ul>
        </div>
      )}
      <h3>{t("panel.participants")}</h3>
      <ul class="list" data-testid="participants">
        {inside.map((p) => (
          <li class="participant" data-participant={p.id}>
            <span class={p.talking ? "talking" : ""}>
              {p.name}
              {p.talking && <span class="badge ok"> {t("panel.talking")}</span>}
              {p.hand_raised && (
                <span class="badge warn" data-testid="hand-raised">
                  {t("guest.hand_raised")}
                </span>
              )}
            </span>
            <span class={encrypted(p) ? "badge ok" : "badge warn"} data-testid="participant-encryption">{encrypted(p) ? t("panel.encrypted") : t("panel.not_encrypted")}</span>
            {e2ee.state !== "off" && <E2eeBadges p={e2eeOf(p.id)} run={run} />}
            {p.audio === "off" && <span class="badge warn">{t("privacy.mic_muted")}</span>}
            {hosted && <GuestRoles p={p} moderation={moderation} run={run} />}
            <button type="button" class="big" onClick={() => run("meeting.remove", { participant: p.id })}>
              {t("panel.remove")}
            </button>
          </li>
        ))}
      </ul>
      {hosted && (
        <p class="row">
          {moderation.locked && (
            <span class="badge warn" data-testid="meeting-locked">
              {t("panel.locked")}
            </span>
          )}
          <button type="button" class="big toggle" aria-pressed={moderation.locked} data-testid="lock" onClick={() => run(moderation.locked ? "meeting.unlock" : "meeting.lock")}>
            {moderation.locked ? t("panel.unlock") : t("panel.lock")}
          </button>
        </p>
      )}
      <ContentFloor floor={meeting.content_floor} />
      {meeting.target?.kind === "hosted" && (
        <Chat
          prefix="panel-chat"
          heading="h3"
          messages={((meeting.chat ?? []) as ChatMessage[]).map((m) => ({ key: m.seq, from: m.from, label: m.from, text: m.text }))}
          onSend={(text) => run("meeting.chat.send", { text })}
        />
      )}
      {meeting.target?.kind === "sip" && meeting.state === "connected" && <SipControls onHold={meeting.on_hold === true} farEndOnHold={meeting.far_end_on_hold === true} run={run} />}
      <button type="button" class="big danger" data-testid="leave" onClick={() => run("meeting.leave")}>
        {t("panel.leave")}
      </button>
    </div>
  );
}
