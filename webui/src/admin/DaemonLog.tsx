// The daemon's recent log (GET /api/v1/logs): what roomd did and why something failed, newest
// first, filtered by the least severe level to show. Read on demand: it is a window onto the
// journal, not a live stream (live room changes are in the events section).
import { useState } from "preact/hooks";
import { useFetch } from "../api";
import { ErrorBanner } from "../components";
import { t, type Key } from "../i18n";

type LogRecord = { seq: number; time: string; level: Level; target: string; message: string };
const LEVELS = ["error", "warn", "info", "debug", "trace"] as const;
type Level = (typeof LEVELS)[number];

export function DaemonLog() {
  // "info" shows what roomd logs by default; warn/error alone hide the context around a failure.
  const [level, setLevel] = useState<Level>("info");
  const log = useFetch<LogRecord[]>(`/api/v1/logs?limit=200&level=${level}`);
  return (
    <section class="card" aria-labelledby="daemon-log-heading">
      <h2 id="daemon-log-heading">{t("admin.logs.daemon")}</h2>
      <div class="row">
        <label for="log-level">{t("admin.logs.min_level")}</label>
        <select id="log-level" value={level} onChange={(e) => setLevel(e.currentTarget.value as Level)}>
          {LEVELS.map((l) => (
            <option value={l}>{t(`admin.logs.level.${l}` as Key)}</option>
          ))}
        </select>
        <button type="button" onClick={log.reload} data-testid="daemon-log-refresh">
          {t("admin.logs.refresh")}
        </button>
      </div>
      <ErrorBanner message={log.error} />
      {log.data && log.data.length === 0 && <p class="muted-text">{t("admin.logs.none")}</p>}
      <table data-testid="daemon-log">
        <thead>
          <tr>
            <th scope="col">{t("admin.logs.time")}</th>
            <th scope="col">{t("admin.logs.level")}</th>
            <th scope="col">{t("admin.logs.source")}</th>
            <th scope="col">{t("admin.logs.message")}</th>
          </tr>
        </thead>
        <tbody>
          {log.data?.map((r) => (
            <tr key={r.seq} data-level={r.level}>
              <td>{r.time}</td>
              <td>{r.level === "error" || r.level === "warn" ? <strong>{t(`admin.logs.level.${r.level}` as Key)}</strong> : t(`admin.logs.level.${r.level}` as Key)}</td>
              <td>
                <code>{r.target}</code>
              </td>
              <td class="log-message">{r.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
