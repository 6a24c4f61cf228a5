/** The access log: who read which clinic record, when, and with what outcome. Read-only; exportable. */
import { Readable } from "node:stream";
import { type Static, Type } from "@sinclair/typebox";
import { invalidRequest } from "../domain/errors.js";
import { isoTime, parseTimeFilter } from "../domain/time.js";
import { type AccessLogFilter, type AccessLogRow, listAccessLogs } from "../store/access-log.js";
import { type App, type AppContext, principalOf } from "./context.js";
import { decodeCursor, toPage } from "./pagination.js";
import { errorResponses, ListPage, ListQuery } from "./schemas.js";

const EXPORT_BATCH = 500;

export const AccessLog = Type.Object(
  {
    id: Type.String(),
    time: Type.String({ format: "date-time" }),
    client_id: Type.String(),
    resource_type: Type.String(),
    resource_id: Type.Union([Type.String(), Type.Null()]),
    resource_ids: Type.Union([Type.Array(Type.String()), Type.Null()]),
    outcome: Type.Union([Type.Literal("allowed"), Type.Literal("forbidden"), Type.Literal("not_found")]),
    method: Type.String(),
    path: Type.String(),
    request_id: Type.String(),
    ip: Type.Union([Type.String(), Type.Null()]),
    user_agent: Type.Union([Type.String(), Type.Null()]),
  },
  { title: "AccessLogEntry" },
);
type AccessLog = Static<typeof AccessLog>;

function present(row: AccessLogRow): AccessLog {
  return {
    id: row.id,
    time: new Date(row.created_at).toISOString(),
    client_id: row.client_id,
    resource_type: row.resource_type,
    resource_id: row.resource_id,
    resource_ids: row.resource_ids === null ? null : (JSON.parse(row.resource_ids) as string[]),
    outcome: row.outcome,
    method: row.method,
    path: row.path,
    request_id: row.request_id,
    ip: row.ip,
    user_agent: row.user_agent,
  };
}

const CSV_COLUMNS = [
  "id",
  "time",
  "client_id",
  "resource_type",
  "resource_id",
  "resource_ids",
  "outcome",
  "method",
  "path",
  "request_id",
  "ip",
  "user_agent",
] as const;

function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? "" : Array.isArray(value) ? value.join(" ") : String(value);
  // Defuse spreadsheet formulas at the start and after every ";" or ",": a spreadsheet that
  // splits on either (or is told to) would otherwise start a new cell with the formula.
  const safe = text.replace(/(^|[;,][ \t]*)(?=[=+\-@\t\r])/g, "$1'");
  // Quote everything that could break a row, or that a ";" spreadsheet would split.
  return /[",;\r\n']/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

const Query = Type.Composite(
  [
    ListQuery,
    Type.Object({
      resource_type: Type.Optional(Type.Union([Type.Literal("appointment"), Type.Literal("prescription")])),
      resource_id: Type.Optional(Type.String({ maxLength: 128 })),
      client_id: Type.Optional(Type.String({ maxLength: 64 })),
      outcome: Type.Optional(
        Type.Union([Type.Literal("allowed"), Type.Literal("forbidden"), Type.Literal("not_found")]),
      ),
      since: Type.Optional(Type.String({ maxLength: 40, description: "ISO-8601 or Unix seconds, inclusive" })),
      until: Type.Optional(Type.String({ maxLength: 40, description: "ISO-8601 or Unix seconds, exclusive" })),
      format: Type.Optional(
        Type.Union([Type.Literal("json"), Type.Literal("ndjson"), Type.Literal("csv")], {
          description: "ndjson and csv stream every matching row (limit and cursor ignored)",
        }),
      ),
    }),
  ],
  { additionalProperties: false },
);

export function accessLogRoutes(app: App, ctx: AppContext): void {
  app.get(
    "/audit/v1/access-logs",
    {
      config: { scope: "audit:read" },
      schema: {
        tags: ["audit"],
        summary: "The access log of the business's clinic records, oldest first",
        querystring: Query,
        response: { 200: ListPage(AccessLog), ...errorResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const { businessId } = principalOf(request);
      const { limit = 50, cursor, since, until, format = "json", ...rest } = request.query;
      const time = (name: string, text: string | undefined) => {
        if (text === undefined) return undefined;
        const ms = parseTimeFilter(text);
        if (ms === undefined) throw invalidRequest(`${name} must be an ISO-8601 time or Unix seconds`);
        return ms;
      };
      const filter: AccessLogFilter = { ...rest, since: time("since", since), until: time("until", until) };
      const after = decodeCursor(cursor);

      if (format === "json") {
        const rows = await listAccessLogs(ctx.db, businessId, filter, { after, limit: limit + 1 });
        return toPage(rows, limit, present);
      }

      async function* lines(): AsyncGenerator<string> {
        if (format === "csv") yield `${CSV_COLUMNS.join(",")}\r\n`;
        let position = after;
        for (;;) {
          const rows = await listAccessLogs(ctx.db, businessId, filter, { after: position, limit: EXPORT_BATCH });
          for (const row of rows) {
            const log = present(row);
            yield format === "ndjson"
              ? `${JSON.stringify(log)}\n`
              : `${CSV_COLUMNS.map((c) => csvCell(log[c])).join(",")}\r\n`;
          }
          if (rows.length < EXPORT_BATCH) return;
          position = rows.at(-1)?.id;
        }
      }
      const stamp = isoTime(Date.now()).replaceAll(":", "");
      return reply
        .type(format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson")
        .header("content-disposition", `attachment; filename="access-log-${stamp}.${format}"`)
        .send(Readable.from(lines()) as never);
    },
  );
}
