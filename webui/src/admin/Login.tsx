// Logging in, and claiming a room that has no administrator yet (roomd answers a login on an
// unclaimed room with 409, which switches to the claim form).
import { useState } from "preact/hooks";
import { api, ApiError } from "../api";
import { ErrorBanner, Field, describedBy } from "../components";
import { LangSwitch, t, useLang } from "../i18n";

type Session = { username: string; role: string; csrf_token: string };

export function Login({ onLogin }: { onLogin: (s: Session) => void }) {
  useLang();
  const [mode, setMode] = useState<"login" | "claim">("login");
  const [code, setCode] = useState("");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<ApiError | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const fieldError = (f: string) => (error?.field === f ? error.message : null);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === "claim") {
        await api("POST", "/api/v1/claim", { code, username, password });
        setNotice(t("admin.claim.done"));
        setMode("login");
      }
      onLogin(await api<Session>("POST", "/api/v1/session", { username, password }));
    } catch (err) {
      const apiError = err as ApiError;
      if (mode === "login" && apiError.status === 409) setMode("claim");
      else setError(apiError);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="login">
      <header class="topbar">
        <h1>{mode === "claim" ? t("admin.claim.title") : t("admin.title")}</h1>
        <LangSwitch />
      </header>
      <form class="card narrow" onSubmit={submit} data-testid={`${mode}-form`}>
        {mode === "claim" && <p>{t("admin.claim.intro")}</p>}
        {notice && <p class="notice" role="status">{notice}</p>}
        {mode === "claim" && (
          <Field id="claim-code" label={t("admin.claim.code")} error={fieldError("code")}>
            <input id="claim-code" class="code-input" autoComplete="off" required value={code} onInput={(e) => setCode(e.currentTarget.value)} {...describedBy("claim-code", fieldError("code"))} />
          </Field>
        )}
        <Field id="username" label={t("admin.username")} error={fieldError("username")}>
          <input id="username" autoComplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} {...describedBy("username", fieldError("username"))} />
        </Field>
        <Field id="password" label={t("admin.password")} error={fieldError("password")}>
          <input id="password" type="password" autoComplete={mode === "claim" ? "new-password" : "current-password"} required value={password} onInput={(e) => setPassword(e.currentTarget.value)} {...describedBy("password", fieldError("password"))} />
        </Field>
        <ErrorBanner message={error && !error.field ? error.message : null} />
        <div class="row">
          <button class="big primary" type="submit" disabled={busy} data-testid="submit">
            {mode === "claim" ? t("admin.claim.submit") : t("admin.login")}
          </button>
          <button class="big" type="button" onClick={() => setMode(mode === "claim" ? "login" : "claim")}>
            {mode === "claim" ? t("admin.login") : t("admin.claim.title")}
          </button>
        </div>
      </form>
    </main>
  );
}
