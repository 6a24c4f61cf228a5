/** One webhook: its key, edit, rotate, disable / enable, test, delete, and its deliveries. */
import type { Webhook } from "@carehooks/sdk/client";
import type { ComponentChild } from "preact";
import { Fragment } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { eventTypes, generateSigningKey } from "../api/catalog.js";
import { can, type Session } from "../api/session.js";
import { Link, navigate } from "../router.js";
import { when } from "../ui/format.js";
import { useLoad } from "../ui/hooks.js";
import { Loading, ProblemBox } from "../ui/problem.js";
import { Badge } from "../ui/state-badge.js";
import { DeliveriesPanel } from "./deliveries.js";
import { WebhookForm } from "./webhook-form.js";

export function WebhookPage(props: { session: Session; id: string }) {
  const { session, id } = props;
  const client = session.client;
  const writable = can(session, "webhooks:write");
  const webhook = useLoad(() => client.webhooks.get(id), [session, id]);
  const catalog = useLoad(() => eventTypes(client), [session]);
  const [editing, setEditing] = useState(false);
  /** The signing key, once revealed (reads never carry it: it is fetched from …/secret on request). */
  const [secret, setSecret] = useState<string | undefined>(undefined);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [message, setMessage] = useState<string | undefined>(
    new URLSearchParams(window.location.search).has("created") ? "Webhook created." : undefined,
  );
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const [deliveriesVersion, setDeliveriesVersion] = useState(0);

  const act = async (work: () => Promise<string | undefined>) => {
    setBusy(true);
    setError(undefined);
    setMessage(undefined);
    try {
      const done = await work();
      if (done) setMessage(done);
      webhook.reload();
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  // The question takes the focus, on its harmless answer, so a keyboard user is not left behind it.
  const cancelDelete = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (confirmDelete) cancelDelete.current?.focus();
  }, [confirmDelete]);

  // Not through act(): it reads the webhook again afterwards, which a deleted one answers with a 404.
  const remove = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await client.webhooks.delete(id);
      navigate("/webhooks", { replace: true });
    } catch (caught) {
      setError(caught);
      setBusy(false);
    }
  };

  if (webhook.error && !webhook.data) return <ProblemBox error={webhook.error} onRetry={webhook.reload} />;
  if (!webhook.data) return <Loading />;
  const current = webhook.data;
  const disabled = current.state === "disabled";

  return (
    <section>
      <p>
        <Link href="/webhooks">← Webhooks</Link>
      </p>
      <div class="heading">
        <h1 class="wrap">{current.endpoint}</h1>
        <Badge value={current.state} />
      </div>
      {current.state_reason && <p class="muted">{current.state_reason}</p>}
      <dl class="facts">
        <dt>Id</dt>
        <dd>
          <code>{current.id}</code>
        </dd>
        <dt>Events</dt>
        <dd>{current.event_names.join(", ")}</dd>
        <dt>Created</dt>
        <dd>{when(current.created_at)}</dd>
        <dt>Signing key</dt>
        <dd>
          {!current.signed ? (
            "none (requests are not signed)"
          ) : current.signature_scheme === "ed25519" ? (
            <>
              Ed25519; receivers verify with the public key{" "}
              <code class="secret" data-testid="public-key">
                {current.public_key}
              </code>
            </>
          ) : secret !== undefined ? (
            <code class="secret" data-testid="signing-key">
              {secret}
            </code>
          ) : writable ? (
            <button
              type="button"
              class="secondary"
              onClick={() =>
                act(async () => {
                  setSecret((await client.webhooks.secret(id)).signing_key ?? undefined);
                  return undefined;
                })
              }
            >
              Reveal signing key
            </button>
          ) : (
            "set (revealing it needs webhooks:write)"
          )}
        </dd>
        {current.previous_key_expires_at && (
          <>
            <dt>Previous key</dt>
            <dd>still signs alongside the new one until {when(current.previous_key_expires_at)}</dd>
          </>
        )}
        {settingsOf(current).map(([name, value]) => (
          <Fragment key={name}>
            <dt>{name}</dt>
            <dd>{value}</dd>
          </Fragment>
        ))}
      </dl>
      <output class="notice" aria-live="polite">
        {message}
      </output>
      <ProblemBox error={error} />
      {writable && (
        <div class="actions wrap-actions">
          <button type="button" disabled={busy} onClick={() => setEditing(!editing)}>
            Edit
          </button>
          <button
            type="button"
            disabled={busy || !current.signed}
            onClick={() =>
              act(async () => {
                if (current.signature_scheme === "ed25519") {
                  // A new pair, made by the server: its public key shows in the reloaded webhook.
                  await client.webhooks.update(id, { generate_signing_key: true });
                  return "Key pair rotated: the previous key keeps signing during the overlap, so receivers can switch to the new public key.";
                }
                const key = generateSigningKey();
                await client.webhooks.update(id, { signing_key: key });
                setSecret(key);
                return "Key rotated: the previous key keeps signing during the overlap, so receivers can switch.";
              })
            }
          >
            Rotate key
          </button>
          {current.previous_key_expires_at && (
            <button
              type="button"
              class="secondary"
              disabled={busy}
              onClick={() =>
                act(async () => {
                  await client.webhooks.update(id, { expire_previous_key: true });
                  return "The previous key no longer signs.";
                })
              }
            >
              Expire previous key now
            </button>
          )}
          <button
            type="button"
            disabled={busy || disabled}
            onClick={() =>
              act(async () => {
                const delivery = await client.webhooks.test(id);
                setDeliveriesVersion((n) => n + 1);
                return `Test event sent (delivery ${delivery.id}).`;
              })
            }
          >
            Send test event
          </button>
          <button
            type="button"
            class={disabled ? undefined : "secondary"}
            disabled={busy}
            onClick={() =>
              act(async () => {
                if (disabled) await client.webhooks.enable(id);
                else await client.webhooks.disable(id);
                return disabled ? "Webhook enabled." : "Webhook disabled: pending deliveries are cancelled.";
              })
            }
          >
            {disabled ? "Enable" : "Disable"}
          </button>
          <button type="button" class="danger" disabled={busy} onClick={() => setConfirmDelete(true)}>
            Delete
          </button>
        </div>
      )}
      {confirmDelete && (
        <div class="card confirm" role="alertdialog" aria-labelledby="confirm-delete">
          <p id="confirm-delete">Delete this webhook? Its pending deliveries stop, and this cannot be undone.</p>
          <div class="actions">
            <button type="button" class="danger" onClick={remove}>
              Yes, delete
            </button>
            <button type="button" class="secondary" ref={cancelDelete} onClick={() => setConfirmDelete(false)}>
              Cancel
            </button>
          </div>
        </div>
      )}
      {editing && catalog.data && (
        <WebhookForm
          catalog={catalog.data}
          initial={current}
          submitLabel="Save"
          onCancel={() => setEditing(false)}
          onSubmit={async (values) => {
            await client.webhooks.update(id, values as never);
            setEditing(false);
            setMessage("Webhook saved.");
            webhook.reload();
          }}
        />
      )}
      <DeliveriesPanel session={session} webhook={current} version={deliveriesVersion} />
    </section>
  );
}

/** The webhook's own delivery settings that differ from the server's, as label and text. */
function settingsOf(webhook: Webhook): [string, ComponentChild][] {
  const settings: [string, ComponentChild][] = [];
  if (webhook.filter) settings.push(["Filter", <code data-testid="filter">{JSON.stringify(webhook.filter)}</code>]);
  if (webhook.ordering === "per_resource") settings.push(["Ordering", "one resource's events at a time, in order"]);
  if (webhook.max_in_flight !== null) settings.push(["Max in flight", String(webhook.max_in_flight)]);
  if (webhook.rate_limit !== null) settings.push(["Rate limit", `${webhook.rate_limit} requests/s`]);
  if (webhook.timeout !== null) settings.push(["Timeout", `${webhook.timeout} s`]);
  if (webhook.retry_schedule !== null) {
    settings.push([
      "Retries",
      webhook.retry_schedule.length === 0 ? "none" : webhook.retry_schedule.map((seconds) => `${seconds} s`).join(", "),
    ]);
  }
  if (webhook.headers) {
    settings.push([
      "Headers",
      Object.entries(webhook.headers)
        .map(([name, value]) => `${name}: ${value}`)
        .join("; "),
    ]);
  }
  return settings;
}
