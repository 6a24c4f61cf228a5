/** The access log (clients with audit:read): who read which clinic record; filters and CSV / NDJSON export. */
import { useState } from "preact/hooks";
import type { Session } from "../api/session.js";
import { when } from "../ui/format.js";
import { useLoad } from "../ui/hooks.js";
import { Empty, Loading, ProblemBox } from "../ui/problem.js";
import { Badge } from "../ui/state-badge.js";
import { Table } from "../ui/table.js";

const PATH = "/audit/v1/access-logs";

interface AccessLogEntry {
  readonly id: string;
  readonly time: string;
  readonly client_id: string;
  readonly resource_type: string;
  readonly resource_id: string | null;
  readonly outcome: string;
  readonly method: string;
  readonly path: string;
  readonly request_id: string;
}

interface Filters {
  resource_type: string;
  resource_id: string;
  client_id: string;
  outcome: string;
  since: string;
}

const EMPTY: Filters = { resource_type: "", resource_id: "", client_id: "", outcome: "", since: "" };

function query(filters: Filters): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(filters)) {
    if (value.trim() === "") continue;
    out[name] = name === "since" ? new Date(value).toISOString() : value.trim();
  }
  return out;
}

export function AccessLogPage(props: { session: Session }) {
  const { session } = props;
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [cursors, setCursors] = useState<string[]>([]);
  const [downloadError, setDownloadError] = useState<unknown>(undefined);
  const cursor = cursors.at(-1);
  const page = useLoad(
    () =>
      session.client.request<{ data: AccessLogEntry[]; next_cursor: string | null }>({
        method: "GET",
        path: PATH,
        query: { ...query(filters), limit: 50, ...(cursor ? { cursor } : {}) },
      }),
    [session, filters, cursor],
  );

  const download = async (format: "csv" | "ndjson") => {
    setDownloadError(undefined);
    try {
      const token = await session.tokens.accessToken();
      const params = new URLSearchParams({ ...query(filters), format });
      const response = await fetch(`${PATH}?${params}`, { headers: { authorization: `Bearer ${token}` } });
      if (!response.ok)
        throw new Error(`the export answered ${response.status} (request ${response.headers.get("x-request-id")})`);
      const url = URL.createObjectURL(await response.blob());
      const link = document.createElement("a");
      link.href = url;
      link.download = `access-log.${format === "csv" ? "csv" : "ndjson"}`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (caught) {
      setDownloadError(caught);
    }
  };

  return (
    <section>
      <h1>Access log</h1>
      <p class="muted">Every read of an appointment or prescription, allowed or not, oldest first.</p>
      <form
        class="filters"
        onSubmit={(event) => {
          event.preventDefault();
          setFilters(draft);
          setCursors([]);
        }}
      >
        <label>
          Resource
          <select
            value={draft.resource_type}
            onChange={(event) => setDraft({ ...draft, resource_type: event.currentTarget.value })}
          >
            <option value="">any</option>
            <option value="appointment">appointment</option>
            <option value="prescription">prescription</option>
          </select>
        </label>
        <label>
          Resource id
          <input
            value={draft.resource_id}
            placeholder="apt_…"
            onInput={(event) => setDraft({ ...draft, resource_id: event.currentTarget.value })}
          />
        </label>
        <label>
          Client id
          <input
            value={draft.client_id}
            placeholder="cli_…"
            onInput={(event) => setDraft({ ...draft, client_id: event.currentTarget.value })}
          />
        </label>
        <label>
          Outcome
          <select
            value={draft.outcome}
            onChange={(event) => setDraft({ ...draft, outcome: event.currentTarget.value })}
          >
            <option value="">any</option>
            <option value="allowed">allowed</option>
            <option value="forbidden">forbidden</option>
            <option value="not_found">not found</option>
          </select>
        </label>
        <label>
          Since
          <input
            type="datetime-local"
            value={draft.since}
            onInput={(event) => setDraft({ ...draft, since: event.currentTarget.value })}
          />
        </label>
        <button type="submit">Filter</button>
      </form>
      <div class="actions">
        <button type="button" class="secondary" onClick={() => download("csv")}>
          Download CSV
        </button>
        <button type="button" class="secondary" onClick={() => download("ndjson")}>
          Download NDJSON
        </button>
      </div>
      <ProblemBox error={downloadError ?? page.error} onRetry={page.reload} />
      {page.loading && !page.data && <Loading />}
      {page.data && page.data.data.length === 0 && (
        <Empty title="Nothing logged for these filters">
          <p>Reads of appointment and prescription details are logged here. Widen the filters to see more.</p>
        </Empty>
      )}
      {page.data && page.data.data.length > 0 && (
        <Table caption="Access log" columns={["Time", "Client", "Resource", "Outcome", "Request"]}>
          {page.data.data.map((entry) => (
            <tr key={entry.id}>
              <td>{when(entry.time)}</td>
              <td>
                <code>{entry.client_id}</code>
              </td>
              <td class="wrap">
                {entry.resource_type} {entry.resource_id && <code>{entry.resource_id}</code>}
              </td>
              <td>
                <Badge value={entry.outcome} />
              </td>
              <td class="wrap">
                {entry.method} {entry.path}
              </td>
            </tr>
          ))}
        </Table>
      )}
      <div class="actions">
        {cursors.length > 0 && (
          <button type="button" class="secondary" onClick={() => setCursors(cursors.slice(0, -1))}>
            Previous page
          </button>
        )}
        {page.data?.next_cursor && (
          <button type="button" class="secondary" onClick={() => setCursors([...cursors, page.data!.next_cursor!])}>
            Next page
          </button>
        )}
      </div>
    </section>
  );
}
