// Small pieces every view shares: the privacy bar, form fields with the server's message next
// to them, and error banners.
import type { ComponentChildren } from "preact";
import { t } from "./i18n";
import type { Status } from "./api";

/** Always visible: whether the room's microphones and camera are live. */
export function PrivacyBar({ status }: { status: Status | null }) {
  const muted = status?.audio?.microphones?.muted === true;
  const cameraOff = status?.video?.camera?.state === "off";
  return (
    <div class="privacy" role="status" aria-live="polite" data-testid="privacy">
      <span class={muted ? "badge warn" : "badge ok"} data-testid="mic-state">
        {muted ? t("privacy.mic_muted") : t("privacy.mic_on")}
      </span>
      <span class={cameraOff ? "badge warn" : "badge ok"} data-testid="camera-state">
        {cameraOff ? t("privacy.cam_off") : t("privacy.cam_on")}
      </span>
    </div>
  );
}

/** A labelled input; `error` is the server's message for this field, shown right under it. */
export function Field(props: {
  id: string;
  label: string;
  error?: string | null;
  hint?: ComponentChildren;
  children: ComponentChildren;
}) {
  return (
    <div class={props.error ? "field invalid" : "field"}>
      <label for={props.id}>{props.label}</label>
      {props.children}
      {props.hint && <div class="hint" id={`${props.id}-hint`}>{props.hint}</div>}
      {props.error && (
        <div class="field-error" id={`${props.id}-error`} role="alert" data-field-error={props.id}>
          {props.error}
        </div>
      )}
    </div>
  );
}

export function ErrorBanner({ message }: { message: string | null | undefined }) {
  if (!message) return null;
  return (
    <div class="error-banner" role="alert">
      {message}
    </div>
  );
}

/** The input's aria attributes that tie it to its hint and error. */
export function describedBy(id: string, error?: string | null, hint?: boolean) {
  const ids = [hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ");
  return { "aria-describedby": ids || undefined, "aria-invalid": error ? true : undefined };
}
