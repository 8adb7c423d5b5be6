// Users with their roles, and API tokens (a new token's secret is shown once).
import { useState } from "preact/hooks";
import { api, ApiError, useFetch } from "../api";
import { ErrorBanner, Field, describedBy } from "../components";
import { t } from "../i18n";

const ROLES = ["admin", "integrator", "user", "room-control", "audit"];
// `metrics` (Prometheus scrapers: GET /api/v1/metrics only) is for tokens, never for users.
const TOKEN_ROLES = [...ROLES, "metrics"];

export function Users() {
  const { data, error, reload } = useFetch<{ username: string; role: string; created: string }[]>("/api/v1/users");
  const [form, setForm] = useState({ username: "", password: "", role: "user" });
  const [problem, setProblem] = useState<ApiError | null>(null);
  const fieldError = (f: string) => (problem?.field === f ? problem.message : null);
  const create = async (e: Event) => {
    e.preventDefault();
    setProblem(null);
    try {
      await api("POST", "/api/v1/users", form);
      setForm({ username: "", password: "", role: "user" });
      reload();
    } catch (err) {
      setProblem(err as ApiError);
    }
  };
  const remove = async (username: string) => {
    setProblem(null);
    await api("DELETE", `/api/v1/users/${encodeURIComponent(username)}`).catch((e) => setProblem(e));
    reload();
  };
  const [reset, setReset] = useState({ username: "", password: "" });
  const [resetDone, setResetDone] = useState(false);
  const [resetProblem, setResetProblem] = useState<ApiError | null>(null);
  const setPassword = async (e: Event) => {
    e.preventDefault();
    setResetProblem(null);
    setResetDone(false);
    try {
      await api("PUT", `/api/v1/users/${encodeURIComponent(reset.username)}/password`, { password: reset.password });
      setReset({ username: reset.username, password: "" });
      setResetDone(true);
    } catch (err) {
      setResetProblem(err as ApiError);
    }
  };
  return (
    <section class="card" aria-labelledby="users-heading">
      <h2 id="users-heading">{t("admin.tab.users")}</h2>
      <ErrorBanner message={error} />
      <table>
        <thead>
          <tr>
            <th scope="col">{t("admin.username")}</th>
            <th scope="col">{t("admin.role")}</th>
            <th scope="col">{t("admin.created")}</th>
            <th scope="col"><span class="visually-hidden">{t("common.delete")}</span></th>
          </tr>
        </thead>
        <tbody>
          {data?.map((u) => (
            <tr>
              <td>{u.username}</td>
              <td>{u.role}</td>
              <td>{u.created}</td>
              <td>
                <button type="button" onClick={() => remove(u.username)} aria-label={`${t("common.delete")} ${u.username}`}>
                  {t("common.delete")}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form onSubmit={create} class="inline-form">
        <h3>{t("admin.new_user")}</h3>
        <Field id="new-username" label={t("admin.username")} error={fieldError("username")}>
          <input id="new-username" required value={form.username} onInput={(e) => setForm({ ...form, username: e.currentTarget.value })} {...describedBy("new-username", fieldError("username"))} />
        </Field>
        <Field id="new-password" label={t("admin.password")} error={fieldError("password")}>
          <input id="new-password" type="password" autoComplete="new-password" required value={form.password} onInput={(e) => setForm({ ...form, password: e.currentTarget.value })} {...describedBy("new-password", fieldError("password"))} />
        </Field>
        <Field id="new-role" label={t("admin.role")} error={fieldError("role")}>
          <select id="new-role" value={form.role} onChange={(e) => setForm({ ...form, role: e.currentTarget.value })}>
            {ROLES.map((r) => (
              <option value={r}>{r}</option>
            ))}
          </select>
        </Field>
        <ErrorBanner message={problem && !problem.field ? problem.message : null} />
        <button type="submit" class="primary">{t("common.create")}</button>
      </form>
      <form onSubmit={setPassword} class="inline-form">
        <h3>{t("admin.set_password")}</h3>
        <Field id="reset-username" label={t("admin.username")}>
          <select id="reset-username" required value={reset.username} onChange={(e) => setReset({ ...reset, username: e.currentTarget.value })}>
            <option value="">—</option>
            {data?.map((u) => (
              <option value={u.username}>{u.username}</option>
            ))}
          </select>
        </Field>
        <Field id="reset-password" label={t("admin.password")} error={resetProblem?.message}>
          <input id="reset-password" type="password" autoComplete="new-password" required value={reset.password} onInput={(e) => setReset({ ...reset, password: e.currentTarget.value })} {...describedBy("reset-password", resetProblem?.message)} />
        </Field>
        {resetDone && <p class="notice" role="status">{t("admin.config.saved")}</p>}
        <button type="submit">{t("admin.set_password")}</button>
      </form>
    </section>
  );
}

export function Tokens() {
  const { data, error, reload } = useFetch<{ id: string; name: string; role: string; created: string; created_by: string }[]>("/api/v1/tokens");
  const [form, setForm] = useState({ name: "", role: "room-control" });
  const [secret, setSecret] = useState<string | null>(null);
  const [problem, setProblem] = useState<ApiError | null>(null);
  const fieldError = (f: string) => (problem?.field === f ? problem.message : null);
  const create = async (e: Event) => {
    e.preventDefault();
    setProblem(null);
    try {
      const made = await api<{ token: string }>("POST", "/api/v1/tokens", form);
      setSecret(made.token);
      setForm({ ...form, name: "" });
      reload();
    } catch (err) {
      setProblem(err as ApiError);
    }
  };
  const revoke = async (id: string) => {
    await api("DELETE", `/api/v1/tokens/${encodeURIComponent(id)}`).catch((e) => setProblem(e));
    reload();
  };
  return (
    <section class="card" aria-labelledby="tokens-heading">
      <h2 id="tokens-heading">{t("admin.tab.tokens")}</h2>
      <ErrorBanner message={error} />
      {secret && (
        <p class="notice" role="status">
          {t("admin.token_secret")} <code data-testid="token-secret">{secret}</code>
        </p>
      )}
      <table data-testid="tokens">
        <thead>
          <tr>
            <th scope="col">id</th>
            <th scope="col">{t("admin.token_name")}</th>
            <th scope="col">{t("admin.role")}</th>
            <th scope="col">{t("admin.created")}</th>
            <th scope="col">{t("admin.created_by")}</th>
            <th scope="col"><span class="visually-hidden">{t("common.delete")}</span></th>
          </tr>
        </thead>
        <tbody>
          {data?.map((tok) => (
            <tr>
              <td><code>{tok.id}</code></td>
              <td>{tok.name}</td>
              <td>{tok.role}</td>
              <td>{tok.created}</td>
              <td>{tok.created_by}</td>
              <td>
                <button type="button" onClick={() => revoke(tok.id)} aria-label={`${t("common.delete")} ${tok.name}`}>
                  {t("common.delete")}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form onSubmit={create} class="inline-form">
        <h3>{t("admin.new_token")}</h3>
        <Field id="token-name" label={t("admin.token_name")} error={fieldError("name")}>
          <input id="token-name" required value={form.name} onInput={(e) => setForm({ ...form, name: e.currentTarget.value })} {...describedBy("token-name", fieldError("name"))} />
        </Field>
        <Field id="token-role" label={t("admin.role")}>
          <select id="token-role" value={form.role} onChange={(e) => setForm({ ...form, role: e.currentTarget.value })}>
            {TOKEN_ROLES.map((r) => (
              <option value={r}>{r}</option>
            ))}
          </select>
        </Field>
        <ErrorBanner message={problem && !problem.field ? problem.message : null} />
        <button type="submit" class="primary">{t("common.create")}</button>
      </form>
    </section>
  );
}
