/** One delivery with every attempt (time, HTTP status, duration, response excerpt, error), and "Resend". */
import { useState } from "preact/hooks";
import { can, type Session } from "../api/session.js";
import { Link } from "../router.js";
import { CodeBlock } from "../ui/code-block.js";
import { when } from "../ui/format.js";
import { useInterval, useLoad } from "../ui/hooks.js";
import { Empty, Loading, ProblemBox } from "../ui/problem.js";
import { Badge } from "../ui/state-badge.js";
import { Table } from "../ui/table.js";

export function DeliveryPage(props: { session: Session; id: string }) {
  const { session, id } = props;
  const delivery = useLoad(() => session.client.deliveries.get(id), [session, id]);
  const [error, setError] = useState<unknown>(undefined);
  const [message, setMessage] = useState<string | undefined>(undefined);
  const unfinished = delivery.data?.status === "pending" || delivery.data?.status === "in_flight";
  useInterval(delivery.reload, 1000, unfinished);

  if (delivery.error && !delivery.data) return <ProblemBox error={delivery.error} onRetry={delivery.reload} />;
  if (!delivery.data) return <Loading />;
  const current = delivery.data;

  const resend = async () => {
    setError(undefined);
    setMessage(undefined);
    try {
      await session.client.deliveries.resend(id);
      setMessage("Sent again: a new round of attempts has started.");
      delivery.reload();
    } catch (caught) {
      setError(caught);
    }
  };

  return (
    <section>
      <p>
        <Link href={`/webhooks/${encodeURIComponent(current.subscription_id)}`}>← Webhook</Link>
      </p>
      <div class="heading">
        <h1>Delivery {current.event_name}</h1>
        <Badge value={current.status} />
      </div>
      <dl class="facts">
        <dt>Id</dt>
        <dd>
          <code>{current.id}</code>
        </dd>
        <dt>Event</dt>
        <dd>
          <code>{current.event_id}</code>
        </dd>
        <dt>Created</dt>
        <dd>{when(current.created_at)}</dd>
        <dt>Next attempt</dt>
        <dd>{when(current.next_attempt_at)}</dd>
      </dl>
      {can(session, "webhooks:write") && (
        <div class="actions">
          <button type="button" onClick={resend} disabled={unfinished}>
            Resend
          </button>
        </div>
      )}
      <output class="notice" aria-live="polite">
        {message}
      </output>
      <ProblemBox error={error} />
      <h2>Attempts</h2>
      {current.attempts.length === 0 ? (
        <Empty title="No attempts yet">
          <p>The first attempt is made as soon as the dispatcher picks the delivery up.</p>
        </Empty>
      ) : (
        <Table caption="Attempts" columns={["#", "Time", "HTTP status", "Duration", "Response", "Error"]}>
          {current.attempts.map((attempt) => (
            <tr key={attempt.id} data-attempt={attempt.n}>
              <td>{attempt.n}</td>
              <td>{when(attempt.started_at)}</td>
              <td>{attempt.response_status ?? "—"}</td>
              <td>{attempt.duration_ms} ms</td>
              <td class="wrap">
                <code class="excerpt">{attempt.response_body || "—"}</code>
              </td>
              <td class="wrap">{attempt.error ?? "—"}</td>
            </tr>
          ))}
        </Table>
      )}
      {current.attempts.length > 0 && (
        <details>
          <summary>Request headers of the last attempt (secrets removed)</summary>
          <CodeBlock label="Request headers" value={current.attempts.at(-1)?.request_headers} />
        </details>
      )}
    </section>
  );
}
