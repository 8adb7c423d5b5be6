// The admin pages for a person with a cookie session: claim, log in, then tabs. The CSRF token
// from the login is kept for this tab only (sessionStorage); a reload without it logs in again.
import { useEffect, useState } from "preact/hooks";
import { api, setCredentials, useRoom, type RoomEvent } from "../api";
import { PrivacyBar } from "../components";
import { LangSwitch, t, useLang, type Key } from "../i18n";
import { Login } from "./Login";
import { Overview } from "./Overview";
import { Users, Tokens } from "./Accounts";
import { ConfigForm } from "./ConfigForm";
import { Identity } from "./Identity";
import { MeetingStats } from "./MeetingStats";
import { Logs } from "./Logs";

const CSRF_KEY = "roomd.csrf";
type Me = { username: string; role: string };
const TABS = ["overview", "users", "tokens", "config", "identity", "meeting", "logs"] as const;
type Tab = (typeof TABS)[number];
const ADMIN_ONLY: Tab[] = ["users", "tokens"];

export function Admin() {
  useLang();
  const [me, setMe] = useState<Me | null>(null);
  const [checked, setChecked] = useState(false);
  useEffect(() => {
    // The session ended (idle, restart, logout elsewhere): back to the login form.
    const loggedOut = () => {
      sessionStorage.removeItem(CSRF_KEY);
      setCredentials({ kind: "none" });
      setMe(null);
    };
    window.addEventListener("roomd:unauthorized", loggedOut);
    return () => window.removeEventListener("roomd:unauthorized", loggedOut);
  }, []);
  useEffect(() => {
    const csrf = sessionStorage.getItem(CSRF_KEY);
    if (!csrf) return setChecked(true);
    setCredentials({ kind: "session", csrf });
    api<Me>("GET", "/api/v1/session")
      .then(setMe)
      .catch(() => sessionStorage.removeItem(CSRF_KEY))
      .finally(() => setChecked(true));
  }, []);
  if (!checked) return <main id="main"><p>{t("common.loading")}</p></main>;
  if (!me)
    return (
      <Login
        onLogin={(session) => {
          sessionStorage.setItem(CSRF_KEY, session.csrf_token);
          setCredentials({ kind: "session", csrf: session.csrf_token });
          setMe(session);
        }}
      />
    );
  return (
    <Console
      me={me}
      onLogout={async () => {
        await api("DELETE", "/api/v1/session").catch(() => undefined);
        sessionStorage.removeItem(CSRF_KEY);
        setCredentials({ kind: "none" });
        setMe(null);
      }}
    />
  );
}

function Console({ me, onLogout }: { me: Me; onLogout: () => void }) {
  const [tab, setTab] = useState<Tab>(() => (TABS.find((x) => `#${x}` === location.hash) ?? "overview") as Tab);
  const [events, setEvents] = useState<RoomEvent[]>([]);
  const { status, live } = useRoom(true, (e) => setEvents((list) => [e, ...list].slice(0, 200)));
  const tabs = TABS.filter((x) => me.role === "admin" || !ADMIN_ONLY.includes(x));
  const choose = (x: Tab) => {
    setTab(x);
    history.replaceState(null, "", `#${x}`);
  };
  return (
    <div class="admin">
      <header class="topbar">
        <h1>{t("admin.title")}</h1>
        <PrivacyBar status={status} />
        <span class={live ? "live on" : "live"} role="status">
          {live ? t("common.connected") : t("common.disconnected")}
        </span>
        <span class="muted-text">
          {me.username} ({me.role})
        </span>
        <a class="button" href="/panel">{t("admin.open_panel")}</a>
        <LangSwitch />
        <button type="button" onClick={onLogout} data-testid="logout">
          {t("admin.logout")}
        </button>
      </header>
      <nav aria-label={t("admin.title")}>
        <ul class="tabs">
          {tabs.map((x) => (
            <li>
              <a href={`#${x}`} aria-current={x === tab ? "page" : undefined} class={x === tab ? "tab active" : "tab"} data-tab={x} onClick={(e) => (e.preventDefault(), choose(x))}>
                {t(`admin.tab.${x}` as Key)}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main">
        {tab === "overview" && <Overview status={status} />}
        {tab === "users" && <Users />}
        {tab === "tokens" && <Tokens />}
        {tab === "config" && <ConfigForm canWrite={me.role === "admin" || me.role === "integrator"} />}
        {tab === "identity" && <Identity canInstall={me.role === "admin"} />}
        {tab === "meeting" && <MeetingStats status={status} />}
        {tab === "logs" && <Logs events={events} canReadAudit={me.role === "admin" || me.role === "audit"} canReadLogs={["admin", "integrator", "audit"].includes(me.role)} />}
      </main>
    </div>
  );
}
