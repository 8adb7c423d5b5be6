// In a meeting: state, encryption, participants with talking/encryption badges, the lobby with
// admit/remove (the panel's "incoming" calls: guests asking to join a hosted meeting), leave.
// Every badge shows what status measured; there is no "verified" badge until roomd really
// verifies participants.
import { t, type Key } from "../i18n";

type Run = (name: string, args?: Record<string, unknown>) => Promise<void>;
type Participant = { id: string; name: string; state: string; audio: string; video: string; talking: boolean; encryption: string };

/** What status measured: DTLS-SRTP (WebRTC, SIP) or SDES-SRTP (SIP) both encrypt the media. */
const encrypted = (p: Participant) => p.encryption === "dtls-srtp" || p.encryption === "sdes-srtp";

export function Meeting({ meeting, run }: { meeting: any; run: Run }) {
  const participants: Participant[] = meeting.participants ?? [];
  const lobby = participants.filter((p) => p.state === "lobby");
  const inside = participants.filter((p) => p.state !== "lobby");
  return (
    <div class="meeting" data-testid="meeting">
      <p class="meeting-state" role="status" data-state={meeting.state}>
        {t(`panel.state.${meeting.state}` as Key) ?? meeting.state}{" "}
        <span class={meeting.encrypted ? "badge ok" : "badge warn"} data-testid="meeting-encryption" data-encrypted={meeting.encrypted ? "true" : "false"}>{meeting.encrypted ? t("panel.encrypted") : t("panel.not_encrypted")}</span>
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
          <li class="participant">
            <span class={p.talking ? "talking" : ""}>
              {p.name}
              {p.talking && <span class="badge ok"> {t("panel.talking")}</span>}
            </span>
            <span class={encrypted(p) ? "badge ok" : "badge warn"} data-testid="participant-encryption">{encrypted(p) ? t("panel.encrypted") : t("panel.not_encrypted")}</span>
            {p.audio === "off" && <span class="badge warn">{t("privacy.mic_muted")}</span>}
            <button type="button" class="big" onClick={() => run("meeting.remove", { participant: p.id })}>
              {t("panel.remove")}
            </button>
          </li>
        ))}
      </ul>
      <button type="button" class="big danger" data-testid="leave" onClick={() => run("meeting.leave")}>
        {t("panel.leave")}
      </button>
    </div>
  );
}
