/**
 * `GET /stream`: Server-Sent Events of the business's new events, for
 * `carehooks listen`. Each message's `id:` is the event id; a client that
 * reconnects with `Last-Event-ID` gets what it missed. Commits can land out of
 * id order, so the tail re-scans a trailing window and de-duplicates instead
 * of trusting "greater than the last id".
 */
import { Type } from "@sinclair/typebox";
import { invalidRequest } from "../domain/errors.js";
import { isEventName } from "../domain/event-catalog.js";
import { eventsSince, findEvent } from "../store/events.js";
import { type App, type AppContext, principalOf } from "./context.js";
import { errorResponses } from "./schemas.js";

/** How far back each scan looks, to catch commits that landed late. */
const TRAILING_WINDOW_MS = 5000;
const HEARTBEAT_MS = 15_000;
const SCAN_LIMIT = 1000;

export function streamRoutes(app: App, ctx: AppContext): void {
  const open = new Set<() => void>();
  // Before the server stops accepting: an open stream would otherwise hold close() for the whole grace period.
  app.addHook("preClose", async () => {
    for (const end of open) end();
  });

  app.get(
    "/notification/v1/connect/webhook/stream",
    {
      config: { scope: "webhooks:read" },
      schema: {
        tags: ["deliveries"],
        summary: "Server-Sent Events of new events (id = event id; resumable with Last-Event-ID)",
        querystring: Type.Object(
          { events: Type.Optional(Type.String({ maxLength: 1000, description: "comma-separated event names" })) },
          { additionalProperties: false },
        ),
        response: { ...errorResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const { businessId } = principalOf(request);
      const wanted = request.query.events
        ?.split(",")
        .map((name) => name.trim())
        .filter(Boolean);
      if (wanted?.some((name) => !isEventName(name))) throw invalidRequest("events names an unknown event");
      const lastEventId = request.headers["last-event-id"];
      const resumeFrom = typeof lastEventId === "string" ? await findEvent(ctx.db, businessId, lastEventId) : undefined;

      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        connection: "keep-alive",
        "x-accel-buffering": "no",
        "x-request-id": request.id,
      });
      raw.write(": carehooks stream\nretry: 1000\n\n");

      // Ids already sent that are still inside the trailing window.
      const sent = new Map<string, number>();
      let cursor = resumeFrom ? resumeFrom.created_at : Date.now();
      if (resumeFrom) sent.set(resumeFrom.id, resumeFrom.created_at);
      let scanning = false;
      let again = false;
      let closed = false;

      /** Writes one message, waiting while the client's socket is full. */
      const send = async (text: string): Promise<void> => {
        if (!raw.write(text) && !closed) await new Promise((resolve) => raw.once("drain", resolve));
      };

      const scan = async (): Promise<void> => {
        if (scanning) {
          again = true;
          return;
        }
        scanning = true;
        try {
          do {
            again = false;
            // One pass over the trailing window, page by page in (created_at, id) order: it always ends.
            let position: { created_at: number; id: string } | undefined;
            const windowStart = cursor - TRAILING_WINDOW_MS;
            for (;;) {
              const rows = await eventsSince(ctx.db, businessId, windowStart, SCAN_LIMIT, position);
              for (const row of rows) {
                if (closed) return;
                if (sent.has(row.id) || (resumeFrom && row.id <= resumeFrom.id)) continue;
                sent.set(row.id, row.created_at);
                cursor = Math.max(cursor, row.created_at);
                if (wanted && !wanted.includes(row.name)) continue;
                await send(`id: ${row.id}\nevent: ${row.name}\ndata: ${row.payload}\n\n`);
              }
              const last = rows.at(-1);
              if (rows.length < SCAN_LIMIT || !last) break;
              position = { created_at: last.created_at, id: last.id };
              await new Promise((resolve) => setImmediate(resolve));
            }
            for (const [id, at] of sent) if (at < cursor - 2 * TRAILING_WINDOW_MS) sent.delete(id);
          } while (again && !closed);
        } catch (error) {
          request.log.warn({ err: error }, "stream scan failed");
        } finally {
          scanning = false;
        }
      };

      const unsubscribe = ctx.wakeup.subscribe(() => void scan());
      const poll = setInterval(() => void scan(), ctx.config.pollInterval);
      const heartbeat = setInterval(() => {
        if (raw.writableLength === 0) raw.write(": heartbeat\n\n");
      }, HEARTBEAT_MS);
      const close = () => {
        closed = true;
        unsubscribe();
        clearInterval(poll);
        clearInterval(heartbeat);
        open.delete(end);
      };
      const end = () => {
        close();
        raw.end();
      };
      open.add(end);
      raw.on("close", close);
      await scan();
    },
  );
}
