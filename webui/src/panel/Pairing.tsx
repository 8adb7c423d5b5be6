// An unpaired panel asks the room for pairing; the room display shows a code; typing it here
// gives this panel its own room-control token.
import { useState } from "preact/hooks";
import { api, ApiError } from "../api";
import { Field, ErrorBanner, describedBy } from "../components";
import { t, useLang, LangSwitch } from "../i18n";

export function Pairing({ onPaired }: { onPaired: (token: string) => void }) {
  useLang();
  const [name, setName] = useState("Touch panel");
  const [requestId, setRequestId] = useState<string | null>(null);
  const [code, setCode] = useState("");
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);

  const request = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const answer = await api<{ request_id: string }>("POST", "/api/v1/pairing", { name });
      setRequestId(answer.request_id);
      setCode("");
    } catch (err) {
      setError(err as ApiError);
    } finally {
      setBusy(false);
    }
  };
  const complete = async (e: Event) => {
    e.preventDefault();
    if (!requestId) return;
    setBusy(true);
    setError(null);
    try {
      const answer = await api<{ token: string }>("POST", `/api/v1/pairing/${encodeURIComponent(requestId)}`, { code });
      onPaired(answer.token);
    } catch (err) {
      const apiError = err as ApiError;
      // An expired or used request cannot be answered any more: start over.
      if (apiError.status === 404) setRequestId(null);
      setError(apiError);
    } finally {
      setBusy(false);
    }
  };

  const fieldError = (f: string) => (error?.field === f ? error.message : null);
  return (
    <main class="panel pairing" id="main">
      <header class="topbar">
        <h1>{t("pair.title")}</h1>
        <LangSwitch />
      </header>
      <section class="card narrow">
        <p>{t("pair.intro")}</p>
        {requestId === null ? (
          <form onSubmit={request}>
            <Field id="panel-name" label={t("pair.name")} error={fieldError("name")}>
              <input id="panel-name" value={name} maxLength={48} required onInput={(e) => setName(e.currentTarget.value)} {...describedBy("panel-name", fieldError("name"))} />
            </Field>
            <ErrorBanner message={error && !error.field ? error.message : null} />
            <button class="big primary" type="submit" disabled={busy} data-testid="pair-request">
              {t("pair.request")}
            </button>
          </form>
        ) : (
          <form onSubmit={complete}>
            <p class="notice" role="status">{t("pair.waiting")}</p>
            <Field id="pair-code" label={t("pair.code")} error={fieldError("code")}>
              <input
                id="pair-code"
                class="code-input"
                inputMode="numeric"
                autoComplete="one-time-code"
                pattern="[0-9 ]*"
                maxLength={8}
                required
                value={code}
                onInput={(e) => setCode(e.currentTarget.value)}
                {...describedBy("pair-code", fieldError("code"))}
              />
            </Field>
            <ErrorBanner message={error && !error.field ? error.message : null} />
            <div class="row">
              <button class="big primary" type="submit" disabled={busy} data-testid="pair-submit">
                {t("pair.submit")}
              </button>
              <button class="big" type="button" onClick={request} disabled={busy}>
                {t("pair.again")}
              </button>
            </div>
          </form>
        )}
      </section>
      <p class="footer-link">
        <a href="/admin">{t("pair.admin")}</a>
      </p>
    </main>
  );
}
