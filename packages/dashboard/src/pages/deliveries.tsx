/**
 * A webhook's deliveries: filtered by status, event and time, a page at a
 * time; new ones appear as the event stream announces their events, and
 * unfinished ones are re-read until they finish. "Recover" re-queues the
 * failed ones since a time and shows the task's progress.
 */
import type { DeliveryStatus, Task, Webhook } from "@carehooks/sdk/client";
import { useEffect, useState } from "preact/hooks";
import { firstPages } from "../api/pages.js";
import { can, type Session } from "../api/session.js";
import { openStream } from "../api/stream.js";
import { Link } from "../router.js";
import { when } from "../ui/format.js";
import { useInterval, useLoad } from "../ui/hooks.js";
import { LiveState } from "../ui/live.js";
import { Empty, ProblemBox } from "../ui/problem.js";
import { Badge } from "../ui/state-badge.js";
import { Table } from "../ui/table.js";

const STATUSES: DeliveryStatus[] = ["pending", "in_flight", "succeeded", "failed", "cancelled"];
const WINDOWS: { label: string; hours: number | undefined }[] = [
  { label: "Last hour", hours: 1 },
  { label: "Last 24 hours", hours: 24 },
  { label: "Last 7 days", hours: 24 * 7 },
  { label: "Any time", hours: undefined },
];
const PAGE = 50;

export function DeliveriesPanel(props: { session: Session; webhook: Webhook; version: number }) {
  const { session, webhook } = props;
  const client = session.client;
  const [status, setStatus] = useState<DeliveryStatus | "">("");
  const [eventName, setEventName] = useState("");
  const [hours, setHours] = useState<number | undefined>(24);
  const [pages, setPages] = useState(1);
  const [live, setLive] = useState(false);
  const [tick, setTick] = useState(0);

  const deliveries = useLoad(() => {
    const since = hours === undefined ? undefined : new Date(Date.now() - hours * 3_600_000);
    return firstPages(
      (cursor) =>
        client.deliveries.list(webhook.id, {
          order: "desc",
          limit: PAGE,
          ...(cursor ? { cursor } : {}),
          ...(status ? { status } : {}),
          ...(eventName ? { event_name: eventName as never } : {}),
          ...(since ? { since } : {}),
        }),
      pages,
    );
  }, [session, webhook.id, status, eventName, hours, pages, tick, props.version]);

  // New events mean new deliveries: read again when the stream announces one.
  useEffect(() => {
    const stream = openStream(session.tokens, () => setTick((n) => n + 1), setLive);
    return () => stream.stop();
  }, [session]);
  const unfinished = deliveries.data?.items.some((item) => item.status === "pending" || item.status === "in_flight");
  useInterval(() => setTick((n) => n + 1), 1500, Boolean(unfinished));

  return (
    <section aria-labelledby="deliveries-title">
      <div class="heading">
        <h2 id="deliveries-title">Deliveries</h2>
        <LiveState live={live} />
      </div>
      <form class="filters" onSubmit={(event) => event.preventDefault()}>
        <label>
          Status
          <select
            value={status}
            onChange={(event) => {
              setStatus(event.currentTarget.value as DeliveryStatus | "");
              setPages(1);
            }}
          >
            <option value="">any</option>
            {STATUSES.map((value) => (
              <option key={value} value={value}>
                {value.replace("_", " ")}
              </option>
            ))}
          </select>
        </label>
        <label>
          Event
          <select
            value={eventName}
            onChange={(event) => {
              setEventName(event.currentTarget.value);
              setPages(1);
            }}
          >
            <option value="">any</option>
            {webhook.event_names.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Time
          <select
            value={hours === undefined ? "" : String(hours)}
            onChange={(event) => {
              const value = event.currentTarget.value;
              setHours(value === "" ? undefined : Number(value));
              setPages(1);
            }}
          >
            {WINDOWS.map((window) => (
              <option key={window.label} value={window.hours === undefined ? "" : String(window.hours)}>
                {window.label}
              </option>
            ))}
          </select>
        </label>
      </form>
      <ProblemBox error={deliveries.error} onRetry={deliveries.reload} />
      {deliveries.data && deliveries.data.items.length === 0 && (
        <Empty title="No deliveries match">
          <p>
            Deliveries appear here as events happen. Use “Send test event” above to send one now, or widen the filters.
          </p>
        </Empty>
      )}
      {deliveries.data && deliveries.data.items.length > 0 && (
        <Table caption="Deliveries, newest first" columns={["Created", "Event", "Status", "Attempts", "Last answer"]}>
          {deliveries.data.items.map((delivery) => (
            <tr key={delivery.id} data-delivery={delivery.id}>
              <td>
                <Link href={`/deliveries/${encodeURIComponent(delivery.id)}`}>{when(delivery.created_at)}</Link>
              </td>
              <td>{delivery.event_name}</td>
              <td>
                <Badge value={delivery.status} />
              </td>
              <td>{delivery.attempts}</td>
              <td class="wrap">{delivery.last_status_code ?? delivery.last_error ?? "—"}</td>
            </tr>
          ))}
        </Table>
      )}
      {deliveries.data?.more && (
        <button type="button" class="secondary" onClick={() => setPages(pages + 1)}>
          Load older
        </button>
      )}
      {can(session, "webhooks:write") && (
        <RecoverForm session={session} webhook={webhook} onDone={() => setTick((n) => n + 1)} />
      )}
    </section>
  );
}

function RecoverForm(props: { session: Session; webhook: Webhook; onDone: () => void }) {
  const [since, setSince] = useState(() => localInput(new Date(Date.now() - 3_600_000)));
  const [task, setTask] = useState<Task | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const running = task !== undefined && (task.state === "queued" || task.state === "running");

  const recover = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    try {
      const started = await props.session.client.deliveries.recover(props.webhook.id, { since: new Date(since) });
      setTask(started);
      const finished = await props.session.client.tasks.wait(started.id, { intervalMs: 500, onProgress: setTask });
      setTask(finished);
      props.onDone();
    } catch (caught) {
      setError(caught);
    }
  };

  return (
    <form class="card" onSubmit={recover} aria-label="Recover">
      <h3>Recover failed deliveries</h3>
      <p class="muted">Sends again every failed or cancelled delivery created since this time.</p>
      <div class="inline">
        <label>
          Since
          <input
            type="datetime-local"
            required
            value={since}
            onInput={(event) => setSince(event.currentTarget.value)}
          />
        </label>
        <button type="submit" disabled={running}>
          Recover
        </button>
      </div>
      {task && (
        <div aria-live="polite">
          <progress max={Math.max(1, task.total)} value={task.done} aria-label="Recover progress" />{" "}
          <span>
            {task.state}: {task.done} of {task.total}
            {task.error ? ` (${task.error})` : ""}
          </span>
        </div>
      )}
      <ProblemBox error={error} />
    </form>
  );
}

/** A `datetime-local` value (local time, minutes) for a date. */
function localInput(date: Date): string {
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return shifted.toISOString().slice(0, 16);
}
