// The device identity: where the key lives, fingerprints, the certificate chain; a CSR for an
// enterprise CA and installing the chain it returns.
import { useState } from "preact/hooks";
import { api, ApiError, useFetch } from "../api";
import { ErrorBanner, Field, describedBy } from "../components";
import { t } from "../i18n";

export function Identity({ canInstall }: { canInstall: boolean }) {
  const { data, error, reload } = useFetch<any>("/api/v1/identity");
  const [csr, setCsr] = useState<string | null>(null);
  const [chain, setChain] = useState("");
  const [problem, setProblem] = useState<ApiError | null>(null);
  if (error) return <ErrorBanner message={error} />;
  if (!data) return <p>{t("common.loading")}</p>;
  const install = async (e: Event) => {
    e.preventDefault();
    setProblem(null);
    try {
      await api("PUT", "/api/v1/identity/certificate", { certificate_chain: chain });
      setChain("");
      reload();
    } catch (err) {
      setProblem(err as ApiError);
    }
  };
  // Every refusal of the install is about the chain typed here, with or without a field name.
  const chainError = problem?.message ?? null;
  return (
    <section class="card" aria-labelledby="identity-heading">
      <h2 id="identity-heading">{t("admin.tab.identity")}</h2>
      {data.warning && <p class="error-banner" role="alert">{data.warning}</p>}
      <dl class="facts">
        <dt>{t("admin.identity.backend")}</dt>
        <dd>{data.backend}</dd>
        <dt>{t("admin.identity.key")}</dt>
        <dd><code>{data.key_sha256}</code></dd>
        <dt>{t("admin.identity.cert")}</dt>
        <dd><code>{data.certificate_sha256}</code></dd>
        <dt>{t("admin.identity.self_signed")}</dt>
        <dd>{String(data.self_signed)}</dd>
      </dl>
      <details>
        <summary>{t("admin.identity.chain")}</summary>
        <pre>{data.certificate_chain}</pre>
      </details>
      <button type="button" onClick={() => api<{ csr: string }>("GET", "/api/v1/identity/csr").then((r) => setCsr(r.csr), (e) => setProblem(e))}>
        {t("admin.identity.csr")}
      </button>
      {csr && <pre data-testid="csr">{csr}</pre>}
      {canInstall && (
        <form onSubmit={install} noValidate>
          <Field id="chain" label={t("admin.identity.chain")} error={chainError}>
            <textarea id="chain" rows={6} value={chain} onInput={(e) => setChain(e.currentTarget.value)} {...describedBy("chain", chainError)} />
          </Field>
          <button type="submit" class="primary">{t("admin.identity.install")}</button>
        </form>
      )}
    </section>
  );
}
