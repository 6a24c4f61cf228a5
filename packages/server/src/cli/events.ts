/** `carehooks events list|tail`. */
import { Command } from "commander";
import {
  apiFor,
  type EventOptions,
  eventsOf,
  type IntegratorOptions,
  oneEventOf,
  WEBHOOK_API,
  withEventOption,
  withProfile,
} from "./integrator.js";
import { printJson, printTable } from "./output.js";
import { followStream } from "./stream-client.js";

interface Event {
  id: string;
  event_name: string;
  resource_id: string;
  created_at: string;
  payload: { data?: { action?: string; status?: string } };
}

export function eventsCommand(): Command {
  const events = new Command("events").description("The business's events");

  withProfile(
    withEventOption(events.command("list"), "only this event name")
      .description("List events, oldest first")
      .option("--since <time>", "at or after (ISO-8601 or Unix seconds)")
      .option("--limit <n>", "at most this many", "100"),
  ).action(async (options: IntegratorOptions & EventOptions & { since?: string; limit: string }) => {
    const items: Event[] = [];
    for await (const item of apiFor(options).pages<Event>(`${WEBHOOK_API}/events`, {
      event_name: oneEventOf(options),
      since: options.since,
    })) {
      items.push(item);
      if (items.length >= Number(options.limit)) break;
    }
    printTable(
      options,
      items,
      [
        ["ID", (e) => e.id],
        ["EVENT", (e) => e.event_name],
        ["ACTION", (e) => e.payload.data?.action ?? "-"],
        ["RESOURCE", (e) => e.resource_id],
        ["CREATED", (e) => e.created_at],
      ],
      "no events",
    );
  });

  withProfile(
    withEventOption(events.command("tail"), "only these event names").description(
      "Print new events as they happen (follows the server's stream)",
    ),
  ).action(async (options: IntegratorOptions & EventOptions) => {
    await followStream(apiFor(options), {
      events: eventsOf(options),
      onEvent: (event) => {
        if (options.json) return printJson({ id: event.id, event: event.name, payload: JSON.parse(event.data) });
        const payload = JSON.parse(event.data) as { data?: Record<string, unknown> };
        const resource = payload.data?.appointment_id ?? payload.data?.prescription_id ?? "";
        process.stdout.write(
          `${new Date().toISOString()}  ${event.id}  ${event.name.padEnd(21)} ${String(payload.data?.action ?? "").padEnd(10)} ${resource}\n`,
        );
      },
      onStatus: (status, detail) => process.stderr.write(`-- stream ${status}${detail ? `: ${detail}` : ""}\n`),
    });
  });

  return events;
}
