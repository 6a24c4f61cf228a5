/** The event catalog, with each payload's JSON Schema and an example. */
import { Type } from "@sinclair/typebox";
import { EVENT_CATALOG } from "../domain/event-catalog.js";
import type { App } from "./context.js";
import { errorResponses } from "./schemas.js";

const EventType = Type.Object(
  {
    name: Type.String(),
    description: Type.String(),
    schema: Type.Unknown({ description: "JSON Schema of the payload" }),
    example: Type.Unknown(),
  },
  { title: "EventType" },
);

/** Plain JSON copies: TypeBox schemas carry symbol keys that are no business of API callers. */
const CATALOG = EVENT_CATALOG.map((entry) => JSON.parse(JSON.stringify(entry)) as object);

export function eventTypeRoutes(app: App): void {
  app.get(
    "/notification/v1/connect/webhook/event-types",
    {
      config: { scope: "webhooks:read" },
      schema: {
        tags: ["webhooks"],
        summary: "The events a webhook can subscribe to, with payload schemas and examples",
        response: {
          200: Type.Object({ data: Type.Array(EventType), msg: Type.Literal("success") }),
          ...errorResponses(401, 403),
        },
      },
    },
    async () => ({ data: CATALOG as never, msg: "success" as const }),
  );
}
