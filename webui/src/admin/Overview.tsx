// What the room shows and has: a live preview of the room display (snapshot polling) and the
// hardware the profile found.
import { useEffect, useState } from "preact/hooks";
import type { Status } from "../api";
import { t } from "../i18n";

export function DisplayPreview({ intervalMs = 1000 }: { intervalMs?: number }) {
  const [url, setUrl] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let current: string | null = null;
    let stopped = false;
    let timer: number | undefined;
    const poll = async () => {
      try {
        const response = await fetch("/api/v1/display/snapshot", { credentials: "same-origin" });
        if (!response.ok) throw new Error((await response.json().catch(() => ({}))).message ?? response.statusText);
        const next = URL.createObjectURL(await response.blob());
        if (current) URL.revokeObjectURL(current);
        current = next;
        if (!stopped) (setUrl(next), setError(null));
      } catch (e) {
        if (!stopped) setError((e as Error).message);
      }
      if (!stopped) timer = window.setTimeout(poll, intervalMs);
    };
    poll();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
      if (current) URL.revokeObjectURL(current);
    };
  }, [intervalMs]);
  return (
    <figure class="preview">
      {url ? <img src={url} alt={t("admin.preview")} data-testid="display-preview" /> : <div class="preview-empty">{error ?? t("common.loading")}</div>}
      <figcaption>{t("admin.preview")}</figcaption>
    </figure>
  );
}

export function Overview({ status }: { status: Status | null }) {
  const hardware = status?.system?.hardware;
  const media = status?.system?.media;
  return (
    <div class="overview">
      <section class="card">
        <DisplayPreview />
      </section>
      <section class="card" aria-labelledby="hw-heading">
        <h2 id="hw-heading">{t("admin.hardware")}</h2>
        {status && (
          <p>
            {status.system?.name} · roomd {status.system?.version} · {status.system?.hardware_profile}
            {media && ` · media ${media.state}${media.encoder ? ` (${media.encoder})` : ""}`}
          </p>
        )}
        {hardware?.devices && (
          <table>
            <thead>
              <tr>
                <th scope="col">kind</th>
                <th scope="col">id</th>
                <th scope="col">{t("admin.logs.status")}</th>
                <th scope="col">detail</th>
              </tr>
            </thead>
            <tbody>
              {hardware.devices.map((d: any) => (
                <tr>
                  <td>{d.kind}</td>
                  <td>{d.id}</td>
                  <td>
                    <span class={d.present ? "badge ok" : "badge warn"}>{d.present ? t("admin.hw.present") : t("admin.hw.missing")}</span>
                  </td>
                  <td>{d.detail}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {hardware?.elements && (
          <>
            <h3>{t("admin.elements")}</h3>
            <ul class="inline-list">
              {hardware.elements.map((e: any) => (
                <li class={e.available ? "badge ok" : "badge warn"}>{e.name}</li>
              ))}
            </ul>
          </>
        )}
      </section>
    </div>
  );
}
