// A meeting's chat as the guest page and the panel show it: messages as text (never markup),
// newest last and announced to screen readers, and a line to write in it. Where messages come
// from and go to is the caller's (the guest's data channel, the panel's command).
import { useState } from "preact/hooks";
import { t } from "./i18n";

/** The longest chat message the room takes, in characters. */
export const CHAT_MAX_CHARS = 500;

export interface ChatEntry {
  key: string | number;
  /** The sender's name as the room gave it (also `data-from`, for tests). */
  from: string;
  /** How the sender is shown. */
  label: string;
  text: string;
}

/** `prefix` names the parts: `${prefix}-messages`, `${prefix}-input`, `${prefix}-send`. */
export function Chat({ prefix, heading, messages, onSend }: { prefix: string; heading: "h2" | "h3"; messages: ChatEntry[]; onSend: (text: string) => Promise<void> | void }) {
  const [draft, setDraft] = useState("");
  const Heading = heading;
  const send = async (e: Event) => {
    e.preventDefault();
    const text = draft.trim();
    if (!text) return;
    await onSend(text);
    setDraft("");
  };
  return (
    <section class="card chat" aria-labelledby={`${prefix}-title`}>
      <Heading id={`${prefix}-title`}>{t("guest.chat")}</Heading>
      <ol aria-live="polite" data-testid={`${prefix}-messages`}>
        {messages.map((m) => (
          <li key={m.key} data-from={m.from}>
            <strong>{m.label}</strong>: {m.text}
          </li>
        ))}
      </ol>
      <form onSubmit={send} class="row">
        <label for={`${prefix}-input`} class="visually-hidden">
          {t("guest.chat_message")}
        </label>
        <input id={`${prefix}-input`} data-testid={`${prefix}-input`} maxLength={CHAT_MAX_CHARS} autoComplete="off" value={draft} onInput={(e) => setDraft(e.currentTarget.value)} />
        <button type="submit" class="big" data-testid={`${prefix}-send`}>
          {t("guest.chat_send")}
        </button>
      </form>
    </section>
  );
}
