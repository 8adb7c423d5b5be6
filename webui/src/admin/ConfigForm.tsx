// Configuration forms built from the schema the server exposes (generated from
// docs/configuration.md): one form per section, only changed keys are sent as a merge patch, and
// the server's validation message appears next to the key it names. The browser does not
// validate on its own (noValidate): the room is the judge, so its rules exist in one place.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, useFetch } from "../api";
import { ErrorBanner, Field, describedBy } from "../components";
import { t } from "../i18n";

type SchemaKey = {
  key: string;
  section: string;
  type: string;
  default: unknown;
  allowed: string;
  options?: string[];
  minimum?: number;
  maximum?: number;
  takes_effect: string;
  file_only: boolean;
  meaning: string;
};

function get(config: any, key: string) {
  return key.split(".").reduce((node, k) => node?.[k], config);
}

/** The form's text for a value, and back. */
function toText(k: SchemaKey, value: unknown): string {
  if (k.type === "list of strings") return ((value as string[]) ?? []).join("\n");
  if (k.type === "list of tables") return JSON.stringify(value ?? [], null, 2);
  if (k.type === "boolean") return value ? "true" : "false";
  return value === undefined || value === null ? "" : String(value);
}

function fromText(k: SchemaKey, text: string): unknown {
  switch (k.type) {
    case "integer":
      // Sent as typed when it is not a number, so that the server's message explains it.
      return text.trim() !== "" && Number.isInteger(Number(text)) ? Number(text) : text;
    case "boolean":
      return text === "true";
    case "list of strings":
      return text.split("\n").map((s) => s.trim()).filter(Boolean);
    case "list of tables":
      try {
        return JSON.parse(text);
      } catch {
        return text;
      }
    default:
      // A key that is absent by default ([host]) is removed again by clearing it.
      return text.trim() === "" && k.default === null ? null : text;
  }
}

/** Sets `value` at the dotted `path` inside `patch` (`network.mode` → {network: {mode}}). */
function setPath(patch: Record<string, unknown>, path: string, value: unknown) {
  const parts = path.split(".");
  let node = patch;
  for (const part of parts.slice(0, -1)) {
    node = (node[part] ??= {}) as Record<string, unknown>;
  }
  node[parts[parts.length - 1]] = value;
}

export function ConfigForm({ canWrite }: { canWrite: boolean }) {
  const schema = useFetch<{ keys: SchemaKey[] }>("/api/v1/config/schema");
  const config = useFetch<any>("/api/v1/config");
  const [values, setValues] = useState<Record<string, string>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [banner, setBanner] = useState<Record<string, string>>({});
  const [saved, setSaved] = useState<string | null>(null);
  useEffect(() => {
    if (!schema.data || !config.data) return;
    const next: Record<string, string> = {};
    for (const k of schema.data.keys) next[k.key] = toText(k, get(config.data, k.key));
    setValues(next);
  }, [schema.data, config.data]);
  if (schema.error || config.error) return <ErrorBanner message={schema.error ?? config.error} />;
  if (!schema.data || !config.data) return <p>{t("common.loading")}</p>;
  const sections = [...new Set(schema.data.keys.map((k) => k.section))];

  const save = async (section: string, e: Event) => {
    e.preventDefault();
    const keys = schema.data!.keys.filter((k) => k.section === section && !k.file_only);
    const patch: Record<string, unknown> = {};
    for (const k of keys) {
      const text = values[k.key];
      if (text !== toText(k, get(config.data, k.key))) setPath(patch, k.key.slice(section.length + 1), fromText(k, text));
    }
    setErrors({});
    setBanner({});
    setSaved(null);
    if (Object.keys(patch).length === 0) return;
    try {
      await api("PATCH", "/api/v1/config", { [section]: patch });
      setSaved(section);
      config.reload();
    } catch (err) {
      const apiError = err as ApiError;
      if (apiError.field) setErrors({ [apiError.field]: apiError.message });
      else setBanner({ [section]: apiError.message });
    }
  };

  return (
    <div class="config">
      <p>{t("admin.config.intro")}</p>
      {sections.map((section) => (
        <form class="card" noValidate onSubmit={(e) => save(section, e)} data-section={section} aria-labelledby={`section-${section}`}>
          <h2 id={`section-${section}`}>[{section}]</h2>
          {schema.data!.keys
            .filter((k) => k.section === section)
            .map((k) => {
              const id = `cfg-${k.key.replace(/\./g, "-")}`;
              const error = errors[k.key];
              const disabled = !canWrite || k.file_only;
              const common = {
                id,
                name: k.key,
                disabled,
                "data-key": k.key,
                ...describedBy(id, error, true),
              };
              const set = (v: string) => setValues({ ...values, [k.key]: v });
              const value = values[k.key] ?? "";
              return (
                <Field
                  id={id}
                  label={k.key}
                  error={error}
                  hint={
                    <>
                      {k.meaning} <span class="muted-text">({k.allowed}; {t("admin.config.default")} {JSON.stringify(k.default)}{k.takes_effect === "next start" ? `; ${t("admin.config.next_start")}` : ""}{k.file_only ? `; ${t("admin.config.file_only")}` : ""})</span>
                    </>
                  }
                >
                  {k.type === "boolean" ? (
                    <select {...common} value={value} onChange={(e) => set(e.currentTarget.value)}>
                      <option value="true">true</option>
                      <option value="false">false</option>
                    </select>
                  ) : k.options ? (
                    <select {...common} value={value} onChange={(e) => set(e.currentTarget.value)}>
                      {k.options.map((o) => (
                        <option value={o}>{o}</option>
                      ))}
                    </select>
                  ) : k.type.startsWith("list") ? (
                    <textarea {...common} rows={4} value={value} onInput={(e) => set(e.currentTarget.value)} />
                  ) : (
                    <input {...common} type={k.type === "integer" ? "number" : "text"} min={k.minimum} max={k.maximum} value={value} onInput={(e) => set(e.currentTarget.value)} />
                  )}
                </Field>
              );
            })}
          <ErrorBanner message={banner[section]} />
          {saved === section && <p class="notice" role="status">{t("admin.config.saved")}</p>}
          {canWrite && schema.data!.keys.some((k) => k.section === section && !k.file_only) && (
            <button type="submit" class="primary" data-testid={`save-${section}`}>
              {t("common.save")}
            </button>
          )}
        </form>
      ))}
    </div>
  );
}
