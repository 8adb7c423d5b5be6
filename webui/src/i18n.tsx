// German and English. The language comes from the browser (navigator.languages) until a person
// picks one; the pick is remembered in localStorage.
import { useEffect, useState } from "preact/hooks";

export type Lang = "en" | "de";
const STORAGE_KEY = "roomd.lang";

const en = {
  "app.title": "roomd",
  "lang.label": "Language",
  "common.save": "Save",
  "common.cancel": "Cancel",
  "common.delete": "Delete",
  "common.create": "Create",
  "common.close": "Close",
  "common.loading": "Loading…",
  "common.error": "Error",
  "common.connected": "Live",
  "common.disconnected": "Reconnecting…",
  "privacy.mic_on": "Microphone on",
  "privacy.mic_muted": "Microphone muted",
  "privacy.cam_on": "Camera on",
  "privacy.cam_off": "Camera off",
  "pair.title": "Pair this touch panel",
  "pair.intro": "This panel is not paired with the room yet. Request pairing, then type the code shown on the room display.",
  "pair.name": "Panel name",
  "pair.request": "Request pairing",
  "pair.code": "Code from the room display",
  "pair.submit": "Pair",
  "pair.waiting": "Look at the room display: it shows a 6-digit code for 5 minutes.",
  "pair.again": "Request a new code",
  "pair.admin": "Admin pages",
  "panel.join": "Join a meeting",
  "panel.address": "Meeting address or id",
  "panel.pin": "PIN (optional)",
  "panel.join_button": "Join",
  "panel.host": "Host a meeting here",
  "panel.favourites": "Favourites",
  "panel.add_favourite": "Add to favourites",
  "panel.history": "Recent calls",
  "panel.no_history": "No calls yet",
  "panel.mute": "Mute",
  "panel.unmute": "Unmute",
  "panel.camera_off": "Camera off",
  "panel.camera_on": "Camera on",
  "panel.volume": "Volume",
  "panel.layout": "Layout",
  "panel.layout.speaker": "Speaker",
  "panel.layout.grid": "Grid",
  "panel.layout.presentation": "Presentation",
  "panel.layout.single": "Single",
  "panel.selfview": "Self-view",
  "panel.share": "Share content",
  "panel.stop_share": "Stop sharing",
  "panel.camera": "Camera",
  "panel.pan_left": "Pan left",
  "panel.pan_right": "Pan right",
  "panel.tilt_up": "Tilt up",
  "panel.tilt_down": "Tilt down",
  "panel.zoom_in": "Zoom in",
  "panel.zoom_out": "Zoom out",
  "panel.presets": "Presets",
  "panel.save_preset": "Save position as",
  "panel.participants": "Participants",
  "panel.lobby": "Waiting in the lobby",
  "panel.admit": "Admit",
  "panel.remove": "Remove",
  "panel.leave": "Leave",
  "panel.talking": "talking",
  "panel.encrypted": "Encrypted",
  "panel.not_encrypted": "Not encrypted",
  "panel.verified": "Verified",
  "panel.incoming": "Incoming call",
  "panel.accept": "Accept",
  "panel.decline": "Decline",
  "panel.standby": "Standby",
  "panel.wake": "Touch to wake",
  "panel.meeting_state": "Meeting",
  "panel.meetings_unavailable": "Meetings are not available on this room yet.",
  "panel.join_url": "Guests join at",
  "panel.state.idle": "Not in a meeting",
  "panel.state.joining": "Joining…",
  "panel.state.lobby": "Waiting to be admitted…",
  "panel.state.connected": "In a meeting",
  "panel.state.reconnecting": "Reconnecting…",
  "panel.state.failed": "The meeting failed",
  "admin.title": "roomd administration",
  "admin.login": "Log in",
  "admin.logout": "Log out",
  "admin.username": "Username",
  "admin.password": "Password",
  "admin.claim.title": "Claim this room",
  "admin.claim.intro": "This room has no administrator yet. Enter the claim code shown on the room display and create the first administrator.",
  "admin.claim.code": "Claim code",
  "admin.claim.submit": "Claim and create administrator",
  "admin.claim.done": "Claimed. Log in with the new administrator.",
  "admin.tab.overview": "Overview",
  "admin.tab.users": "Users",
  "admin.tab.tokens": "API tokens",
  "admin.tab.config": "Configuration",
  "admin.tab.identity": "Identity",
  "admin.tab.meeting": "Meeting statistics",
  "admin.tab.logs": "Logs",
  "admin.preview": "Room display",
  "admin.hardware": "Hardware found",
  "admin.hw.present": "present",
  "admin.hw.missing": "missing",
  "admin.elements": "Media elements",
  "admin.role": "Role",
  "admin.created": "Created",
  "admin.created_by": "Created by",
  "admin.new_user": "New user",
  "admin.new_token": "New API token",
  "admin.set_password": "Set a new password",
  "admin.token_name": "Token name",
  "admin.token_secret": "Copy this token now; it is not shown again:",
  "admin.config.intro": "Changes are checked by the room and saved at once. Keys marked “next start” apply after a restart.",
  "admin.config.file_only": "set in the file on the device only",
  "admin.config.next_start": "next start",
  "admin.config.saved": "Saved",
  "admin.config.default": "Default",
  "admin.identity.backend": "Key storage",
  "admin.identity.key": "Device key SHA-256",
  "admin.identity.cert": "Certificate SHA-256",
  "admin.identity.self_signed": "Self-signed",
  "admin.identity.chain": "Certificate chain (PEM)",
  "admin.identity.install": "Install certificate chain",
  "admin.identity.csr": "Get a certificate request (CSR)",
  "admin.meeting.none": "No meeting statistics: the room is not in a meeting.",
  "admin.meeting.unavailable": "This room does not report meetings yet.",
  "admin.logs.audit": "Audit log",
  "admin.logs.events": "Live events",
  "admin.logs.time": "Time",
  "admin.logs.actor": "Who",
  "admin.logs.what": "What",
  "admin.logs.status": "Result",
  "admin.logs.newest": "Newest",
  "admin.logs.older": "Older",
  "admin.open_panel": "Touch panel",
  "guest.title": "Join the meeting",
  "guest.name": "Your name",
  "guest.pin": "PIN",
  "guest.join": "Join",
  "guest.preview": "Your camera",
  "guest.no_camera": "No camera or microphone available; you can still join and listen.",
  "guest.lobby": "Waiting for the room to let you in…",
  "guest.in_meeting": "In the meeting",
  "guest.removed": "You were removed from the meeting.",
  "guest.ended": "The meeting has ended.",
  "guest.left": "You left the meeting.",
  "guest.mute": "Mute",
  "guest.unmute": "Unmute",
  "guest.camera_off": "Camera off",
  "guest.camera_on": "Camera on",
  "guest.leave": "Leave",
  "guest.room_video": "The room",
};
export type Key = keyof typeof en;

const de: Record<Key, string> = {
  "app.title": "roomd",
  "lang.label": "Sprache",
  "common.save": "Speichern",
  "common.cancel": "Abbrechen",
  "common.delete": "Löschen",
  "common.create": "Anlegen",
  "common.close": "Schließen",
  "common.loading": "Lädt…",
  "common.error": "Fehler",
  "common.connected": "Live",
  "common.disconnected": "Verbindet neu…",
  "privacy.mic_on": "Mikrofon an",
  "privacy.mic_muted": "Mikrofon stumm",
  "privacy.cam_on": "Kamera an",
  "privacy.cam_off": "Kamera aus",
  "pair.title": "Touch-Panel koppeln",
  "pair.intro": "Dieses Panel ist noch nicht mit dem Raum gekoppelt. Fordern Sie die Kopplung an und geben Sie den Code vom Raumbildschirm ein.",
  "pair.name": "Name des Panels",
  "pair.request": "Kopplung anfordern",
  "pair.code": "Code vom Raumbildschirm",
  "pair.submit": "Koppeln",
  "pair.waiting": "Schauen Sie auf den Raumbildschirm: Er zeigt 5 Minuten lang einen 6-stelligen Code.",
  "pair.again": "Neuen Code anfordern",
  "pair.admin": "Verwaltung",
  "panel.join": "Besprechung beitreten",
  "panel.address": "Adresse oder Kennung der Besprechung",
  "panel.pin": "PIN (optional)",
  "panel.join_button": "Beitreten",
  "panel.host": "Hier eine Besprechung starten",
  "panel.favourites": "Favoriten",
  "panel.add_favourite": "Zu Favoriten",
  "panel.history": "Letzte Anrufe",
  "panel.no_history": "Noch keine Anrufe",
  "panel.mute": "Stumm",
  "panel.unmute": "Stumm aus",
  "panel.camera_off": "Kamera aus",
  "panel.camera_on": "Kamera an",
  "panel.volume": "Lautstärke",
  "panel.layout": "Anordnung",
  "panel.layout.speaker": "Sprecher",
  "panel.layout.grid": "Raster",
  "panel.layout.presentation": "Präsentation",
  "panel.layout.single": "Einzeln",
  "panel.selfview": "Eigenbild",
  "panel.share": "Inhalt teilen",
  "panel.stop_share": "Teilen beenden",
  "panel.camera": "Kamera",
  "panel.pan_left": "Nach links",
  "panel.pan_right": "Nach rechts",
  "panel.tilt_up": "Nach oben",
  "panel.tilt_down": "Nach unten",
  "panel.zoom_in": "Vergrößern",
  "panel.zoom_out": "Verkleinern",
  "panel.presets": "Positionen",
  "panel.save_preset": "Position speichern als",
  "panel.participants": "Teilnehmende",
  "panel.lobby": "Im Warteraum",
  "panel.admit": "Einlassen",
  "panel.remove": "Entfernen",
  "panel.leave": "Verlassen",
  "panel.talking": "spricht",
  "panel.encrypted": "Verschlüsselt",
  "panel.not_encrypted": "Nicht verschlüsselt",
  "panel.verified": "Verifiziert",
  "panel.incoming": "Eingehender Anruf",
  "panel.accept": "Annehmen",
  "panel.decline": "Ablehnen",
  "panel.standby": "Bereitschaft",
  "panel.wake": "Zum Aufwecken berühren",
  "panel.meeting_state": "Besprechung",
  "panel.meetings_unavailable": "Besprechungen sind in diesem Raum noch nicht verfügbar.",
  "panel.join_url": "Gäste treten bei unter",
  "panel.state.idle": "Keine Besprechung",
  "panel.state.joining": "Tritt bei…",
  "panel.state.lobby": "Wartet auf Einlass…",
  "panel.state.connected": "In einer Besprechung",
  "panel.state.reconnecting": "Verbindet neu…",
  "panel.state.failed": "Die Besprechung ist fehlgeschlagen",
  "admin.title": "roomd-Verwaltung",
  "admin.login": "Anmelden",
  "admin.logout": "Abmelden",
  "admin.username": "Benutzername",
  "admin.password": "Passwort",
  "admin.claim.title": "Raum übernehmen",
  "admin.claim.intro": "Dieser Raum hat noch keine Administration. Geben Sie den Code vom Raumbildschirm ein und legen Sie das erste Administrationskonto an.",
  "admin.claim.code": "Übernahmecode",
  "admin.claim.submit": "Übernehmen und Konto anlegen",
  "admin.claim.done": "Übernommen. Melden Sie sich mit dem neuen Konto an.",
  "admin.tab.overview": "Übersicht",
  "admin.tab.users": "Benutzer",
  "admin.tab.tokens": "API-Token",
  "admin.tab.config": "Konfiguration",
  "admin.tab.identity": "Identität",
  "admin.tab.meeting": "Besprechungsstatistik",
  "admin.tab.logs": "Protokolle",
  "admin.preview": "Raumbildschirm",
  "admin.hardware": "Gefundene Hardware",
  "admin.hw.present": "vorhanden",
  "admin.hw.missing": "fehlt",
  "admin.elements": "Medienelemente",
  "admin.role": "Rolle",
  "admin.created": "Angelegt",
  "admin.created_by": "Angelegt von",
  "admin.new_user": "Neuer Benutzer",
  "admin.new_token": "Neues API-Token",
  "admin.set_password": "Neues Passwort setzen",
  "admin.token_name": "Name des Tokens",
  "admin.token_secret": "Kopieren Sie das Token jetzt; es wird nicht wieder angezeigt:",
  "admin.config.intro": "Änderungen prüft der Raum und speichert sie sofort. Mit „nächster Start“ markierte Schlüssel wirken nach einem Neustart.",
  "admin.config.file_only": "nur in der Datei auf dem Gerät einstellbar",
  "admin.config.next_start": "nächster Start",
  "admin.config.saved": "Gespeichert",
  "admin.config.default": "Standard",
  "admin.identity.backend": "Schlüsselspeicher",
  "admin.identity.key": "SHA-256 des Geräteschlüssels",
  "admin.identity.cert": "SHA-256 des Zertifikats",
  "admin.identity.self_signed": "Selbst signiert",
  "admin.identity.chain": "Zertifikatskette (PEM)",
  "admin.identity.install": "Zertifikatskette installieren",
  "admin.identity.csr": "Zertifikatsanforderung (CSR) holen",
  "admin.meeting.none": "Keine Statistik: Der Raum ist in keiner Besprechung.",
  "admin.meeting.unavailable": "Dieser Raum meldet noch keine Besprechungen.",
  "admin.logs.audit": "Prüfprotokoll",
  "admin.logs.events": "Live-Ereignisse",
  "admin.logs.time": "Zeit",
  "admin.logs.actor": "Wer",
  "admin.logs.what": "Was",
  "admin.logs.status": "Ergebnis",
  "admin.logs.newest": "Neueste",
  "admin.logs.older": "Ältere",
  "admin.open_panel": "Touch-Panel",
  "guest.title": "Der Besprechung beitreten",
  "guest.name": "Ihr Name",
  "guest.pin": "PIN",
  "guest.join": "Beitreten",
  "guest.preview": "Ihre Kamera",
  "guest.no_camera": "Keine Kamera oder kein Mikrofon verfügbar; Sie können trotzdem beitreten und zuhören.",
  "guest.lobby": "Warten, bis der Raum Sie einlässt…",
  "guest.in_meeting": "In der Besprechung",
  "guest.removed": "Sie wurden aus der Besprechung entfernt.",
  "guest.ended": "Die Besprechung ist beendet.",
  "guest.left": "Sie haben die Besprechung verlassen.",
  "guest.mute": "Stumm",
  "guest.unmute": "Stumm aus",
  "guest.camera_off": "Kamera aus",
  "guest.camera_on": "Kamera an",
  "guest.leave": "Verlassen",
  "guest.room_video": "Der Raum",
};

const dictionaries: Record<Lang, Record<Key, string>> = { en, de };

export function browserLang(languages: readonly string[]): Lang {
  for (const l of languages) {
    const base = l.toLowerCase().split("-")[0];
    if (base === "de" || base === "en") return base;
  }
  return "en";
}

function initialLang(): Lang {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved === "de" || saved === "en") return saved;
  return browserLang(navigator.languages ?? [navigator.language]);
}

let current: Lang = initialLang();
const listeners = new Set<() => void>();
document.documentElement.lang = current;

export function t(key: Key): string {
  return dictionaries[current][key];
}

export function setLang(lang: Lang) {
  current = lang;
  localStorage.setItem(STORAGE_KEY, lang);
  document.documentElement.lang = lang;
  listeners.forEach((l) => l());
}

/** Re-renders the calling component when the language changes; returns the language. */
export function useLang(): Lang {
  const [, setTick] = useState(0);
  useEffect(() => {
    const listener = () => setTick((n) => n + 1);
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
    };
  }, []);
  return current;
}

export function LangSwitch() {
  const lang = useLang();
  return (
    <div class="lang" role="group" aria-label={t("lang.label")}>
      {(["de", "en"] as Lang[]).map((l) => (
        <button
          type="button"
          class={l === lang ? "chip active" : "chip"}
          aria-pressed={l === lang}
          lang={l}
          onClick={() => setLang(l)}
        >
          {l === "de" ? "Deutsch" : "English"}
        </button>
      ))}
    </div>
  );
}
