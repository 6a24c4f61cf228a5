/** The form for a new webhook and for changing one: endpoint, events (one checkbox each), signing key. */
import type { Webhook } from "@carehooks/sdk/client";
import { useState } from "preact/hooks";
import { type EventType, generateSigningKey } from "../api/catalog.js";
import { ProblemBox } from "../ui/problem.js";

export interface WebhookFormValues {
  readonly endpoint: string;
  readonly event_names: string[];
  readonly signing_key?: string;
}

export function WebhookForm(props: {
  catalog: readonly EventType[];
  initial?: Webhook;
  submitLabel: string;
  onSubmit: (values: WebhookFormValues) => Promise<void>;
  onCancel?: () => void;
}) {
  const editing = props.initial !== undefined;
  const [endpoint, setEndpoint] = useState(props.initial?.endpoint ?? "");
  const [events, setEvents] = useState<Set<string>>(new Set(props.initial?.event_names ?? []));
  const [key, setKey] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [invalid, setInvalid] = useState<string | undefined>(undefined);

  const toggle = (name: string, on: boolean) => {
    const next = new Set(events);
    if (on) next.add(name);
    else next.delete(name);
    setEvents(next);
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    if (events.size === 0) {
      setInvalid("Choose at least one event.");
      return;
    }
    setInvalid(undefined);
    setBusy(true);
    setError(undefined);
    try {
      const values: WebhookFormValues = { endpoint: endpoint.trim(), event_names: [...events] };
      // A new webhook always gets a key: the one given, or one generated here.
      const signingKey = key.trim() || (editing ? undefined : generateSigningKey());
      await props.onSubmit(signingKey ? { ...values, signing_key: signingKey } : values);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card" onSubmit={submit} aria-label={editing ? "Edit webhook" : "New webhook"}>
      <label>
        Endpoint URL
        <input
          name="endpoint"
          type="url"
          required
          placeholder="https://clinic-app.example/webhooks"
          value={endpoint}
          onInput={(event) => setEndpoint(event.currentTarget.value)}
        />
      </label>
      <fieldset>
        <legend>Events</legend>
        {props.catalog.map((type) => (
          <label class="check" key={type.name}>
            <input
              type="checkbox"
              name="event_names"
              value={type.name}
              checked={events.has(type.name)}
              onChange={(event) => toggle(type.name, event.currentTarget.checked)}
            />
            {type.name}
          </label>
        ))}
      </fieldset>
      {!editing && (
        <label>
          Signing key (optional)
          <input
            name="signing_key"
            autoComplete="off"
            placeholder="generated when left empty"
            value={key}
            onInput={(event) => setKey(event.currentTarget.value)}
          />
        </label>
      )}
      {invalid && (
        <p class="problem" role="alert">
          {invalid}
        </p>
      )}
      <div class="actions">
        <button type="submit" disabled={busy}>
          {props.submitLabel}
        </button>
        {props.onCancel && (
          <button type="button" class="secondary" onClick={props.onCancel}>
            Cancel
          </button>
        )}
      </div>
      <ProblemBox error={error} />
    </form>
  );
}
