/**
 * `GET /stats`: what the dashboard's overview draws — the business's queue,
 * deliveries per minute with their outcome over the last hours, and each
 * webhook's outcomes over the last day (the webhook list's success rate).
 */
import { Type } from "@sinclair/typebox";
import { isoTime } from "../domain/time.js";
import {
  businessQueue,
  deliveriesPerMinute,
  deliveriesPerSubscription,
  liveSubscriptionIds,
} from "../store/delivery-stats.js";
import { type App, type AppContext, principalOf } from "./context.js";
import { errorResponses } from "./schemas.js";

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

const Stats = Type.Object(
  {
    queue: Type.Object({
      pending: Type.Integer(),
      in_flight: Type.Integer(),
      oldest_due_seconds: Type.Number({
        description: "How long the earliest due pending delivery has waited; 0 when none",
      }),
    }),
    minutes: Type.Array(
      Type.Object({
        minute: Type.String({ format: "date-time" }),
        succeeded: Type.Integer(),
        failed: Type.Integer(),
        other: Type.Integer({ description: "pending, in flight or cancelled" }),
      }),
      { description: "One entry per minute of the window, oldest first, by the deliveries' creation time" },
    ),
    webhooks: Type.Array(
      Type.Object({ subscription_id: Type.String(), succeeded: Type.Integer(), failed: Type.Integer() }),
      { description: "Outcomes of each webhook's deliveries created in the last 24 hours" },
    ),
  },
  { title: "DeliveryStats" },
);

export function statsRoutes(app: App, ctx: AppContext): void {
  app.get(
    "/notification/v1/connect/webhook/stats",
    {
      config: { scope: "webhooks:read" },
      schema: {
        tags: ["deliveries"],
        summary: "Queue depth, deliveries per minute and failure rate, and each webhook's last day",
        querystring: Type.Object(
          { hours: Type.Optional(Type.Integer({ minimum: 1, maximum: 24, default: 3 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ data: Stats, msg: Type.Literal("success") }), ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const now = Date.now();
      const firstMinute = Math.floor(now / MINUTE) - (request.query.hours ?? 3) * 60 + 1;
      const ids = await liveSubscriptionIds(ctx.db, principalOf(request).businessId);
      const [perMinute, perWebhook, queue] = await Promise.all([
        deliveriesPerMinute(ctx.db, ids, firstMinute * MINUTE),
        deliveriesPerSubscription(ctx.db, ids, now - DAY),
        businessQueue(ctx.db, ids),
      ]);
      const minutes = new Map<number, { succeeded: number; failed: number; other: number }>();
      for (let minute = firstMinute; minute <= Math.floor(now / MINUTE); minute++) {
        minutes.set(minute, { succeeded: 0, failed: 0, other: 0 });
      }
      for (const row of perMinute) {
        const bucket = minutes.get(row.minute);
        if (!bucket) continue;
        if (row.status === "succeeded") bucket.succeeded += row.n;
        else if (row.status === "failed") bucket.failed += row.n;
        else bucket.other += row.n;
      }
      const webhooks = new Map<string, { succeeded: number; failed: number }>();
      for (const row of perWebhook) {
        const entry = webhooks.get(row.subscription_id) ?? { succeeded: 0, failed: 0 };
        if (row.status === "succeeded") entry.succeeded += row.n;
        if (row.status === "failed") entry.failed += row.n;
        webhooks.set(row.subscription_id, entry);
      }
      return {
        data: {
          queue: {
            pending: queue.pending,
            in_flight: queue.inFlight,
            oldest_due_seconds:
              queue.oldestDue !== undefined && queue.oldestDue < now ? Math.round((now - queue.oldestDue) / 1000) : 0,
          },
          minutes: [...minutes].map(([minute, counts]) => ({
            minute: isoTime(minute * MINUTE),
            ...counts,
          })),
          webhooks: [...webhooks].map(([subscription_id, counts]) => ({ subscription_id, ...counts })),
        },
        msg: "success" as const,
      };
    },
  );
}
