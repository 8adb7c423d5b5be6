// Live graphs of the meeting's streams (status.meeting.streams, refreshed every second): the
// last two minutes of bitrate, loss, jitter and round-trip time per stream, drawn as SVG.
import { useEffect, useRef, useState } from "preact/hooks";
import type { Status } from "../api";
import { t } from "../i18n";

type Stream = { participant: string; direction: string; kind: string; bitrate_kbps: number; loss_percent: number; jitter_ms: number; rtt_ms: number; frame_rate: number; width: number; height: number };
const METRICS = ["bitrate_kbps", "loss_percent", "jitter_ms", "rtt_ms"] as const;
const KEEP = 120;

function Graph({ label, values }: { label: string; values: number[] }) {
  const max = Math.max(1, ...values);
  const points = values.map((v, i) => `${(i / (KEEP - 1)) * 300},${60 - (v / max) * 56}`).join(" ");
  const last = values[values.length - 1] ?? 0;
  return (
    <figure class="graph">
      <svg viewBox="0 0 300 60" role="img" aria-label={`${label}: ${last.toFixed(1)}`}>
        <polyline points={points} fill="none" stroke="currentColor" stroke-width="2" />
      </svg>
      <figcaption>
        {label} <strong>{last.toFixed(1)}</strong> (max {max.toFixed(1)})
      </figcaption>
    </figure>
  );
}

export function MeetingStats({ status }: { status: Status | null }) {
  const meeting = status?.meeting;
  const streams: Stream[] = meeting?.streams ?? [];
  const history = useRef(new Map<string, Record<string, number[]>>());
  const [, setTick] = useState(0);
  useEffect(() => {
    for (const s of streams) {
      const id = `${s.participant} ${s.direction} ${s.kind}`;
      const series = history.current.get(id) ?? Object.fromEntries(METRICS.map((m) => [m, [] as number[]]));
      for (const m of METRICS) series[m] = [...series[m], Number(s[m]) || 0].slice(-KEEP);
      history.current.set(id, series);
    }
    setTick((n) => n + 1);
  }, [streams]);
  if (status && meeting === undefined) return <p class="card">{t("admin.meeting.unavailable")}</p>;
  if (streams.length === 0) return <p class="card">{t("admin.meeting.none")}</p>;
  return (
    <div class="stats">
      {streams.map((s) => {
        const id = `${s.participant} ${s.direction} ${s.kind}`;
        const series = history.current.get(id);
        return (
          <section class="card" aria-label={id}>
            <h2>
              {s.direction} {s.kind} · {s.participant}
              {s.kind === "video" && ` · ${s.width}×${s.height} @ ${s.frame_rate.toFixed(0)} fps`}
            </h2>
            <div class="graphs">{series && METRICS.map((m) => <Graph label={m} values={series[m]} />)}</div>
          </section>
        );
      })}
    </div>
  );
}
