// Starting a meeting from the panel: an address (another room's guest link) with its PIN,
// favourites, the call history (both kept on this panel), or hosting a meeting here.
import { useState } from "preact/hooks";
import { Field, describedBy } from "../components";
import { t } from "../i18n";

type Run = (name: string, args?: Record<string, unknown>) => Promise<void>;
type Entry = { address: string; time?: string };
const FAVOURITES_KEY = "roomd.panel.favourites";
const HISTORY_KEY = "roomd.panel.history";

function load(key: string): Entry[] {
  try {
    return JSON.parse(localStorage.getItem(key) ?? "[]");
  } catch {
    return [];
  }
}

/** The meeting target for what a person typed: a SIP address (`sip:` or `sips:`) is called
 * over SIP (the room's registrar); a room's join link calls that room directly. */
export function targetFor(address: string, pin: string): Record<string, unknown> {
  const trimmed = address.trim();
  if (/^sips?:/i.test(trimmed)) return { kind: "sip", uri: trimmed };
  const target: Record<string, unknown> = { kind: "direct", address: trimmed };
  if (pin) target.pin = pin;
  return target;
}

export function JoinForm({ meeting, run }: { meeting: any; run: Run }) {
  const [address, setAddress] = useState("");
  const [pin, setPin] = useState("");
  const [hostPin, setHostPin] = useState("");
  const [favourites, setFavourites] = useState<Entry[]>(() => load(FAVOURITES_KEY));
  const history = load(HISTORY_KEY);
  const join = (a: string, p: string) => {
    const entries = [{ address: a, time: new Date().toISOString() }, ...history.filter((h) => h.address !== a)].slice(0, 10);
    localStorage.setItem(HISTORY_KEY, JSON.stringify(entries));
    return run("meeting.join", { target: targetFor(a, p) });
  };
  const addFavourite = () => {
    if (!address || favourites.some((f) => f.address === address)) return;
    const next = [...favourites, { address }];
    setFavourites(next);
    localStorage.setItem(FAVOURITES_KEY, JSON.stringify(next));
  };
  return (
    <div class="join">
      {meeting?.state === "failed" && meeting.error && (
        <p class="error-banner" role="alert">
          {t("panel.state.failed")}: {meeting.error}
        </p>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          join(address, pin);
        }}
      >
        <Field id="join-address" label={t("panel.address")}>
          <input id="join-address" type="text" inputMode="url" placeholder="https://room.example/join/… · sips:board@example.org" required value={address} onInput={(e) => setAddress(e.currentTarget.value)} {...describedBy("join-address")} />
        </Field>
        <Field id="join-pin" label={t("panel.pin")}>
          <input id="join-pin" inputMode="numeric" pattern="[0-9]*" value={pin} onInput={(e) => setPin(e.currentTarget.value)} />
        </Field>
        <div class="row">
          <button type="submit" class="big primary" data-testid="join">
            {t("panel.join_button")}
          </button>
          <button type="button" class="big" onClick={addFavourite}>
            {t("panel.add_favourite")}
          </button>
        </div>
      </form>
      <form
        class="row host"
        onSubmit={(e) => {
          e.preventDefault();
          run("meeting.join", { target: hostPin ? { kind: "hosted", pin: hostPin } : { kind: "hosted" } });
        }}
      >
        <label for="host-pin" class="visually-hidden">{t("panel.pin")}</label>
        <input id="host-pin" inputMode="numeric" pattern="[0-9]{4,12}" placeholder={t("panel.pin")} value={hostPin} onInput={(e) => setHostPin(e.currentTarget.value)} />
        <button type="submit" class="big" data-testid="host">
          {t("panel.host")}
        </button>
      </form>
      <h3>{t("panel.favourites")}</h3>
      <ul class="list">
        {favourites.map((f) => (
          <li>
            <button type="button" class="list-button" onClick={() => join(f.address, "")}>
              {f.address}
            </button>
          </li>
        ))}
      </ul>
      <h3>{t("panel.history")}</h3>
      {history.length === 0 ? (
        <p class="muted-text">{t("panel.no_history")}</p>
      ) : (
        <ul class="list">
          {history.map((h) => (
            <li>
              <button type="button" class="list-button" onClick={() => setAddress(h.address)}>
                {h.address} <span class="muted-text">{h.time ? new Date(h.time).toLocaleString() : ""}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
