/** The operator's view: queue depth, the oldest due delivery's age, and deliveries per minute with the failure rate. */
import { useState } from "preact/hooks";
import type { Session } from "../api/session.js";
import { stats } from "../api/stats.js";
import { DeliveryChart } from "../ui/chart.js";
import { ago, percent } from "../ui/format.js";
import { useInterval, useLoad } from "../ui/hooks.js";
import { Empty, Loading, ProblemBox } from "../ui/problem.js";

export function OverviewPage(props: { session: Session }) {
  const [hours, setHours] = useState(3);
  const data = useLoad(() => stats(props.session.client, hours), [props.session, hours]);
  useInterval(data.reload, 15_000);
  const minutes = data.data?.minutes ?? [];
  const done = minutes.reduce((sum, m) => sum + m.succeeded + m.failed, 0);
  const failed = minutes.reduce((sum, m) => sum + m.failed, 0);

  return (
    <section>
      <div class="heading">
        <h1>Overview</h1>
        <label class="inline">
          Period
          <select value={String(hours)} onChange={(event) => setHours(Number(event.currentTarget.value))}>
            <option value="1">Last hour</option>
            <option value="3">Last 3 hours</option>
            <option value="12">Last 12 hours</option>
            <option value="24">Last 24 hours</option>
          </select>
        </label>
      </div>
      <ProblemBox error={data.error} onRetry={data.reload} />
      {!data.data && !data.error && <Loading />}
      {data.data && (
        <>
          <div class="tiles">
            <div class="tile">
              <span class="tile-value">{data.data.queue.pending}</span>
              <span>waiting in the queue</span>
            </div>
            <div class="tile">
              <span class="tile-value">{data.data.queue.in_flight}</span>
              <span>being sent now</span>
            </div>
            <div class="tile">
              <span class="tile-value">
                {data.data.queue.pending === 0 ? "—" : ago(data.data.queue.oldest_due_seconds * 1000)}
              </span>
              <span>oldest due delivery's wait</span>
            </div>
            <div class="tile">
              <span class="tile-value">{percent(failed, done)}</span>
              <span>failed in this period</span>
            </div>
          </div>
          {minutes.every((m) => m.succeeded + m.failed + m.other === 0) ? (
            <Empty title="No deliveries in this period">
              <p>Register a webhook and send it a test event: its delivery shows here within a minute.</p>
            </Empty>
          ) : (
            <DeliveryChart minutes={minutes} title={`Deliveries per minute, last ${hours} h`} />
          )}
        </>
      )}
    </section>
  );
}
