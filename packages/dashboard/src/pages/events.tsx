/**
 * The business's events, newest first: those of the chosen window, then every
 * new one as the event stream brings it, without a reload. Finding one by id
 * shows its payload and which webhooks got it, and how that went.
 */
import type { Delivery, StoredEvent } from "@carehooks/sdk/client";
import { useEffect, useState } from "preact/hooks";
import { firstPages } from "../api/pages.js";
import type { Session } from "../api/session.js";
import { openStream } from "../api/stream.js";
import { Link } from "../router.js";
import { CodeBlock } from "../ui/code-block.js";
import { when } from "../ui/format.js";
import { useLoad } from "../ui/hooks.js";
import { LiveState } from "../ui/live.js";
import { Empty, Loading, ProblemBox } from "../ui/problem.js";
import { Badge } from "../ui/state-badge.js";
import { Table } from "../ui/table.js";

const PAGE = 100;

export function EventsPage(props: { session: Session }) {
  const { session } = props;
  const [hours, setHours] = useState(1);
  const [arrived, setArrived] = useState<StoredEvent[]>([]);
  const [live, setLive] = useState(false);
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const [search, setSearch] = useState("");
  const [pages, setPages] = useState(1);
  const events = useLoad(() => {
    const since = new Date(Date.now() - hours * 3_600_000);
    return firstPages(
      (cursor) => session.client.events.list({ since, order: "desc", limit: PAGE, ...(cursor ? { cursor } : {}) }),
      pages,
    );
  }, [session, hours, pages]);

  useEffect(() => {
    setArrived([]);
    const stream = openStream(
      session.tokens,
      (message) => {
        let payload: unknown;
        try {
          payload = JSON.parse(message.data);
        } catch {
          payload = message.data;
        }
        const event: StoredEvent = {
          id: message.id,
          event_name: message.event,
          resource_type: "",
          resource_id: "",
          payload,
          // The payload's event_time (Unix seconds) is when it happened; the arrival is a fallback.
          created_at: new Date(eventTimeOf(payload) ?? Date.now()).toISOString(),
        };
        setArrived((previous) => (previous.some((item) => item.id === event.id) ? previous : [event, ...previous]));
      },
      setLive,
    );
    return () => stream.stop();
  }, [session, hours]);

  const known = new Set(arrived.map((event) => event.id));
  const shown = [...arrived, ...(events.data?.items ?? []).filter((event) => !known.has(event.id))];

  return (
    <section>
      <div class="heading">
        <h1>Events</h1>
        <LiveState live={live} />
      </div>
      <form
        class="filters"
        onSubmit={(event) => {
          event.preventDefault();
          if (search.trim()) setSelected(search.trim());
        }}
      >
        <label>
          Event id
          <input value={search} placeholder="evt_…" onInput={(event) => setSearch(event.currentTarget.value)} />
        </label>
        <button type="submit">Find</button>
        <label>
          Window
          <select
            value={String(hours)}
            onChange={(event) => {
              setHours(Number(event.currentTarget.value));
              setPages(1);
            }}
          >
            <option value="1">Last hour</option>
            <option value="24">Last 24 hours</option>
            <option value="168">Last 7 days</option>
          </select>
        </label>
      </form>
      {selected && <EventDetail session={session} id={selected} onClose={() => setSelected(undefined)} />}
      <ProblemBox error={events.error} onRetry={events.reload} />
      {events.loading && !events.data && <Loading />}
      {events.data && shown.length === 0 && (
        <Empty title="No events in this window">
          <p>
            Events appear here live as appointments and prescriptions change, and when carehooks degrades, disables or
            recovers a webhook. Send a test event from a webhook's page to see one now.
          </p>
        </Empty>
      )}
      {shown.length > 0 && (
        <Table caption="Events, newest first" columns={["Time", "Event", "Id"]}>
          {shown.map((event) => (
            <tr key={event.id} data-event={event.id}>
              <td>{when(event.created_at)}</td>
              <td>{event.event_name}</td>
              <td>
                <button type="button" class="link" onClick={() => setSelected(event.id)}>
                  {event.id}
                </button>
              </td>
            </tr>
          ))}
        </Table>
      )}
      {events.data?.more && (
        <button type="button" class="secondary" onClick={() => setPages(pages + 1)}>
          Load older
        </button>
      )}
    </section>
  );
}

/** Deliveries are made in the event's own transaction: a few seconds around its time find them all. */
function eventTimeOf(payload: unknown): number | undefined {
  const seconds = (payload as { event_time?: unknown } | null)?.event_time;
  return typeof seconds === "number" ? seconds * 1000 : undefined;
}

interface Reached {
  readonly delivery: Delivery;
  readonly endpoint: string;
}

async function deliveriesOf(session: Session, event: StoredEvent): Promise<Reached[]> {
  const at = new Date(event.created_at).getTime();
  const found: Reached[] = [];
  for await (const webhook of session.client.webhooks.iterate()) {
    if (!webhook.event_names.includes(event.event_name as never)) continue;
    const page = await session.client.deliveries.list(webhook.id, {
      event_name: event.event_name as never,
      since: new Date(at - 1000),
      until: new Date(at + 5000),
      limit: 500,
    });
    for (const delivery of page.data) {
      if (delivery.event_id === event.id) found.push({ delivery, endpoint: webhook.endpoint });
    }
  }
  return found;
}

function EventDetail(props: { session: Session; id: string; onClose: () => void }) {
  const detail = useLoad(async () => {
    const event = await props.session.client.events.get(props.id);
    return { event, deliveries: await deliveriesOf(props.session, event) };
  }, [props.session, props.id]);
  return (
    <section class="card" aria-label="Event details">
      <div class="heading">
        <h2>Event {props.id}</h2>
        <button type="button" class="secondary" onClick={props.onClose}>
          Close
        </button>
      </div>
      <ProblemBox error={detail.error} />
      {!detail.data && !detail.error && <Loading />}
      {detail.data && (
        <>
          <p>
            {detail.data.event.event_name} at {when(detail.data.event.created_at)}
          </p>
          <h3>Delivered to</h3>
          {detail.data.deliveries.length === 0 ? (
            <p>No webhook was subscribed to this event when it happened.</p>
          ) : (
            <ul>
              {detail.data.deliveries.map(({ delivery, endpoint }) => (
                <li key={delivery.id}>
                  <Link href={`/deliveries/${encodeURIComponent(delivery.id)}`}>{endpoint}</Link>{" "}
                  <code class="small">{delivery.subscription_id}</code> <Badge value={delivery.status} /> after{" "}
                  {delivery.attempts} attempt(s)
                </li>
              ))}
            </ul>
          )}
          <h3>Payload</h3>
          <CodeBlock label="Payload" value={detail.data.event.payload} />
        </>
      )}
    </section>
  );
}
