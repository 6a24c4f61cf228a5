/** The generated event types: committed, checked against the server's catalog. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { EVENT_CATALOG } from "../../server/dist/domain/event-catalog.js";
import { OUTPUT, renderEventsModule } from "../scripts/generate-events.mjs";
import {
  type CarehooksEvent,
  EVENT_NAMES,
  type EventName,
  type EventsByName,
  isAppointmentCreated,
  isAppointmentUpdated,
  isCarehooksEvent,
  isPrescriptionCreated,
  isPrescriptionUpdated,
} from "../src/index.js";

const GUARDS: Record<EventName, (event: unknown) => boolean> = {
  "appointment.created": isAppointmentCreated,
  "appointment.updated": isAppointmentUpdated,
  "prescription.created": isPrescriptionCreated,
  "prescription.updated": isPrescriptionUpdated,
};

describe("src/events.ts", () => {
  it("is what the generator makes of the current catalog (run scripts/generate-events.mjs after changing it)", () => {
    expect(readFileSync(OUTPUT, "utf8")).toBe(renderEventsModule(EVENT_CATALOG));
  });

  it("names every catalogued event", () => {
    expect([...EVENT_NAMES]).toEqual(EVENT_CATALOG.map((entry) => entry.name));
  });

  it("has one guard per event, true for its own example only", () => {
    for (const entry of EVENT_CATALOG) {
      for (const [name, guard] of Object.entries(GUARDS)) {
        expect(guard(entry.example), `${name} on ${entry.name}`).toBe(name === entry.name);
      }
      expect(isCarehooksEvent(entry.example)).toBe(true);
    }
    for (const value of [null, undefined, "appointment.created", 42, {}, { event: "appointment.deleted" }]) {
      expect(isCarehooksEvent(value)).toBe(false);
      expect(isAppointmentCreated(value)).toBe(false);
    }
  });

  it("types the catalog's examples (checked by tsc -p packages/sdk/test)", () => {
    const examples: CarehooksEvent[] = EVENT_CATALOG.map((entry) => entry.example);
    const created: EventsByName["appointment.created"] = EVENT_CATALOG[0].example;
    expect(examples).toHaveLength(EVENT_CATALOG.length);
    expect(created.data.action).toBe("created");
    const event = examples[1]!;
    if (isAppointmentUpdated(event)) {
      // Narrowed: data.action is the updated actions only.
      const action: "modified" | "started" | "completed" | "cancelled" | "no_show" = event.data.action;
      expect(action).toBe("completed");
    } else {
      throw new Error("the second example is appointment.updated");
    }
  });

  it("the drift check can fail: a changed catalog renders differently", () => {
    const changed = EVENT_CATALOG.map((entry, i) =>
      i === 0 ? { ...entry, description: `${entry.description} Changed.` } : entry,
    );
    expect(renderEventsModule(changed)).not.toBe(readFileSync(OUTPUT, "utf8"));
  });
});
