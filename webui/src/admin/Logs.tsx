// The audit log (who changed what, newest first, paged), the daemon's recent log and the room's
// live events.
import { useState } from "preact/hooks";
import { useFetch, type RoomEvent } from "../api";
import { ErrorBanner } from "../components";
import { t } from "../i18n";
import { DaemonLog } from "./DaemonLog";

type Record_ = { seq: number; time: string; actor: string; role: string | null; source: string; method: string; path: string; status: number; detail: string | null };

export function Logs({ events, canReadAudit, canReadLogs }: { events: RoomEvent[]; canReadAudit: boolean; canReadLogs: boolean }) {
  const [before, setBefore] = useState<number | null>(null);
  const audit = useFetch<Record_[]>(canReadAudit ? `/api/v1/audit?limit=50${before ? `&before=${before}` : ""}` : null);
  return (
    <div class="logs">
      {canReadAudit && (
        <section class="card" aria-labelledby="audit-heading">
          <h2 id="audit-heading">{t("admin.logs.audit")}</h2>
          <ErrorBanner message={audit.error} />
          <table data-testid="audit">
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">{t("admin.logs.time")}</th>
                <th scope="col">{t("admin.logs.actor")}</th>
                <th scope="col">{t("admin.logs.what")}</th>
                <th scope="col">{t("admin.logs.status")}</th>
              </tr>
            </thead>
            <tbody>
              {audit.data?.map((r) => (
                <tr>
                  <td>{r.seq}</td>
                  <td>{r.time}</td>
                  <td>
                    {r.actor}
                    {r.role ? ` (${r.role})` : ""} <span class="muted-text">{r.source}</span>
                  </td>
                  <td>
                    <code>
                      {r.method} {r.path}
                    </code>
                    {r.detail && <div class="muted-text">{r.detail}</div>}
                  </td>
                  <td>{r.status}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div class="row">
            {before !== null && (
              <button type="button" onClick={() => setBefore(null)}>
                {t("admin.logs.newest")}
              </button>
            )}
            {audit.data && audit.data.length === 50 && (
              <button type="button" onClick={() => setBefore(audit.data![audit.data!.length - 1].seq)}>
                {t("admin.logs.older")}
              </button>
            )}
          </div>
        </section>
      )}
      {canReadLogs && <DaemonLog />}
      <section class="card" aria-labelledby="events-heading">
        <h2 id="events-heading">{t("admin.logs.events")}</h2>
        <ol class="events" data-testid="events">
          {events.map((e) => (
            <li>
              <span class="muted-text">{e.time}</span> <code>{e.name}</code> {e.data ? <code class="muted-text">{JSON.stringify(e.data)}</code> : null}
            </li>
          ))}
        </ol>
      </section>
    </div>
  );
}
