/** The business's webhooks: state, last day's success rate, and a form for a new one. */
import { paginate, type Webhook } from "@carehooks/sdk/client";
import { useState } from "preact/hooks";
import { eventTypes } from "../api/catalog.js";
import { can, type Session } from "../api/session.js";
import { stats } from "../api/stats.js";
import { Link, navigate } from "../router.js";
import { percent } from "../ui/format.js";
import { useLoad } from "../ui/hooks.js";
import { Empty, Loading, ProblemBox } from "../ui/problem.js";
import { Badge } from "../ui/state-badge.js";
import { Table } from "../ui/table.js";
import { WebhookForm } from "./webhook-form.js";

async function allWebhooks(session: Session): Promise<Webhook[]> {
  const list: Webhook[] = [];
  for await (const webhook of paginate((cursor) => session.client.webhooks.list({ limit: 200, cursor }))) {
    list.push(webhook);
  }
  return list;
}

export function WebhooksPage(props: { session: Session }) {
  const { session } = props;
  const writable = can(session, "webhooks:write");
  const [creating, setCreating] = useState(false);
  const webhooks = useLoad(() => allWebhooks(session), [session]);
  const catalog = useLoad(() => eventTypes(session.client), [session]);
  // The success rates are a nicety: the list shows without them when the call fails.
  const rates = useLoad(() => stats(session.client, 24).catch(() => undefined), [session]);

  const rateOf = (id: string) => {
    const entry = rates.data?.webhooks.find((item) => item.subscription_id === id);
    return entry ? percent(entry.succeeded, entry.succeeded + entry.failed) : "—";
  };

  return (
    <section>
      <div class="heading">
        <h1>Webhooks</h1>
        {writable && !creating && (
          <button type="button" onClick={() => setCreating(true)}>
            New webhook
          </button>
        )}
      </div>
      {creating && catalog.data && (
        <WebhookForm
          catalog={catalog.data}
          submitLabel="Create"
          onCancel={() => setCreating(false)}
          onSubmit={async (values) => {
            const created = await session.client.webhooks.create(values as never);
            setCreating(false);
            navigate(`/webhooks/${encodeURIComponent(created.id)}?created=1`);
          }}
        />
      )}
      <ProblemBox error={webhooks.error ?? catalog.error} onRetry={webhooks.reload} />
      {webhooks.loading && !webhooks.data && <Loading />}
      {webhooks.data && webhooks.data.length === 0 && (
        <Empty title="No webhooks yet">
          <p>
            {writable
              ? "Choose “New webhook”, give the address of your receiver and pick the events it wants."
              : "Ask someone with write access to register your receiver's address."}
          </p>
        </Empty>
      )}
      {webhooks.data && webhooks.data.length > 0 && (
        <Table caption="Webhooks" columns={["Endpoint", "Events", "State", "Success (24 h)"]}>
          {webhooks.data.map((webhook) => (
            <tr key={webhook.id}>
              <td class="wrap">
                <Link href={`/webhooks/${encodeURIComponent(webhook.id)}`}>{webhook.endpoint}</Link>
              </td>
              <td>{webhook.event_names.join(", ")}</td>
              <td>
                <Badge value={webhook.state} />
                {webhook.state_reason && <div class="muted small">{webhook.state_reason}</div>}
              </td>
              <td>{rateOf(webhook.id)}</td>
            </tr>
          ))}
        </Table>
      )}
    </section>
  );
}
