// The one way the UI talks to roomd: JSON over fetch with either the session cookie (plus its
// CSRF token) or a bearer token (the paired panel), and the events WebSocket for live state.
import { useEffect, useState } from "preact/hooks";

/** An error answer from roomd: its message is for a person, `field` names the offending key. */
export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public field?: string,
  ) {
    super(message);
  }
}

export type Credentials = { kind: "session"; csrf: string } | { kind: "token"; token: string } | { kind: "none" };

let credentials: Credentials = { kind: "none" };
export function setCredentials(c: Credentials) {
  credentials = c;
}

export async function api<T = unknown>(method: string, path: string, body?: unknown, extraHeaders?: Record<string, string>): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...extraHeaders };
  if (body !== undefined && !headers["Content-Type"]) headers["Content-Type"] = "application/json";
  if (credentials.kind === "token") headers.Authorization = `Bearer ${credentials.token}`;
  if (credentials.kind === "session" && method !== "GET") headers["X-CSRF-Token"] = credentials.csrf;
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  if (response.status === 401 && credentials.kind !== "none") {
    // The session ended or the token was revoked: the views go back to login or pairing.
    window.dispatchEvent(new Event("roomd:unauthorized"));
  }
  if (!response.ok) {
    let code = "error";
    let message = `${response.status} ${response.statusText}`;
    let field: string | undefined;
    try {
      const e = await response.json();
      code = e.error ?? code;
      message = e.message ?? message;
      field = e.field ?? undefined;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(response.status, code, message, field);
  }
  if (response.status === 204) return undefined as T;
  const type = response.headers.get("content-type") ?? "";
  return (type.includes("json") ? await response.json() : await response.text()) as T;
}

export function command(name: string, args: Record<string, unknown> = {}) {
  return api<{ result: unknown }>("POST", `/api/v1/commands/${name}`, args);
}

export type Status = Record<string, any>;
export type RoomEvent = { seq: number; time: string; name: string; data: unknown };

function setPath(tree: Status, path: string, value: unknown): Status {
  if (path === "") return (value as Status) ?? {};
  const keys = path.split(".");
  const root: Status = { ...tree };
  let node = root;
  for (let i = 0; i < keys.length - 1; i++) {
    const next = node[keys[i]];
    node[keys[i]] = next && typeof next === "object" && !Array.isArray(next) ? { ...next } : {};
    node = node[keys[i]];
  }
  node[keys[keys.length - 1]] = value;
  return root;
}

/** The room's whole status, kept current over the events WebSocket; reconnects by itself. */
export function useRoom(enabled: boolean, onEvent?: (e: RoomEvent) => void) {
  const [status, setStatus] = useState<Status | null>(null);
  const [live, setLive] = useState(false);
  useEffect(() => {
    if (!enabled) return;
    let socket: WebSocket | null = null;
    let stopped = false;
    let retry: number | undefined;
    const connect = () => {
      const protocols = credentials.kind === "token" ? ["roomd.v1", `roomd.bearer.${credentials.token}`] : undefined;
      socket = new WebSocket(`wss://${location.host}/api/v1/events`, protocols);
      socket.onopen = () => {
        setLive(true);
        socket?.send(JSON.stringify({ type: "subscribe", status: [""], events: ["*"] }));
      };
      socket.onmessage = (m) => {
        let message: any;
        try {
          message = JSON.parse(m.data);
        } catch {
          return;
        }
        if (message.type === "status") setStatus((s) => setPath(s ?? {}, message.path, message.value));
        else if (message.type === "event") onEvent?.(message);
      };
      socket.onclose = () => {
        setLive(false);
        if (stopped) return;
        retry = window.setTimeout(connect, 1500);
        // A socket refused for its credentials looks like any other close: ask the API, whose
        // 401 sends the view back to login or pairing.
        api("GET", "/api/v1/session").catch(() => undefined);
      };
    };
    connect();
    return () => {
      stopped = true;
      window.clearTimeout(retry);
      socket?.close();
    };
  }, [enabled]);
  return { status, live };
}

/** A value read from an API route, refreshed with `reload`. */
export function useFetch<T>(path: string | null, deps: unknown[] = []) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!path) return;
    let cancelled = false;
    api<T>("GET", path)
      .then((d) => !cancelled && (setData(d), setError(null)))
      .catch((e) => !cancelled && setError(e.message));
    return () => {
      cancelled = true;
    };
  }, [path, tick, ...deps]);
  return { data, error, reload: () => setTick((n) => n + 1) };
}
