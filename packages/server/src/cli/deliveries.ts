/** `carehooks deliveries list|show|resend|recover`. */
import { Command } from "commander";
import {
  apiFor,
  type EventOptions,
  type IntegratorOptions,
  oneEventOf,
  WEBHOOK_API,
  withEventOption,
  withProfile,
} from "./integrator.js";
import { printJson, printRecord, printTable } from "./output.js";

interface Delivery {
  id: string;
  event_id: string;
  event_name: string;
  status: string;
  attempts: number;
  next_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
}

interface Attempt {
  n: number;
  started_at: string;
  duration_ms: number;
  response_status: number | null;
  error: string | null;
}

interface Task {
  id: string;
  state: string;
  total: number;
  done: number;
  error: string | null;
}

const TASK_POLL_MS = 250;

function progressBar(done: number, total: number, width = 30): string {
  const share = total === 0 ? 1 : Math.min(1, done / total);
  const filled = Math.round(share * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}`;
}

export function deliveriesCommand(): Command {
  const deliveries = new Command("deliveries").description("Inspect, resend and recover deliveries");

  withProfile(
    withEventOption(deliveries.command("list"), "only this event name")
      .description("A webhook's deliveries")
      .argument("<webhook-id>")
      .option("--status <status>", "pending, in_flight, succeeded, failed or cancelled")
      .option("--since <time>", "created at or after (ISO-8601 or Unix seconds)")
      .option("--until <time>", "created before")
      .option("--limit <n>", "at most this many", "100"),
  ).action(
    async (
      webhookId: string,
      options: IntegratorOptions & EventOptions & { status?: string; since?: string; until?: string; limit: string },
    ) => {
      const api = apiFor(options);
      const items: Delivery[] = [];
      const query = {
        status: options.status,
        event_name: oneEventOf(options),
        since: options.since,
        until: options.until,
      };
      for await (const item of api.pages<Delivery>(`${WEBHOOK_API}/subscriptions/${webhookId}/deliveries`, query)) {
        items.push(item);
        if (items.length >= Number(options.limit)) break;
      }
      printTable(
        options,
        items,
        [
          ["ID", (d) => d.id],
          ["EVENT", (d) => d.event_name],
          ["STATUS", (d) => d.status],
          ["ATTEMPTS", (d) => String(d.attempts)],
          ["LAST", (d) => (d.last_status_code ? `HTTP ${d.last_status_code}` : (d.last_error ?? "-"))],
          ["CREATED", (d) => d.created_at],
        ],
        "no deliveries",
      );
    },
  );

  withProfile(
    deliveries.command("show").description("One delivery with its attempt log").argument("<delivery-id>"),
  ).action(async (id: string, options: IntegratorOptions) => {
    const { data } = await apiFor(options).request<{ data: Omit<Delivery, "attempts"> & { attempts: Attempt[] } }>(
      "GET",
      `${WEBHOOK_API}/deliveries/${id}`,
    );
    if (options.json) return printJson(data);
    const { attempts, ...delivery } = data;
    printRecord({}, delivery);
    process.stdout.write("\n");
    printTable(
      {},
      attempts,
      [
        ["#", (a) => String(a.n)],
        ["STARTED", (a) => a.started_at],
        ["MS", (a) => String(a.duration_ms)],
        ["RESULT", (a) => (a.response_status ? `HTTP ${a.response_status}` : (a.error ?? "-"))],
      ],
      "no attempts yet",
    );
  });

  withProfile(
    deliveries.command("resend").description("Send a finished delivery again").argument("<delivery-id>"),
  ).action(async (id: string, options: IntegratorOptions) => {
    const { data } = await apiFor(options).request<{ data: Delivery }>(
      "POST",
      `${WEBHOOK_API}/deliveries/${id}/resend`,
    );
    printRecord(options, data as unknown as Record<string, unknown>, `${id} queued again`);
  });

  withProfile(
    deliveries
      .command("recover")
      .description("Re-queue a webhook's failed and cancelled deliveries since a time, showing progress")
      .argument("<webhook-id>")
      .requiredOption("--since <time>", "ISO-8601 or Unix seconds")
      .option("--until <time>", "ISO-8601 or Unix seconds (default: now)"),
  ).action(async (webhookId: string, options: IntegratorOptions & { since: string; until?: string }) => {
    const api = apiFor(options);
    let { data: task } = await api.request<{ data: Task }>(
      "POST",
      `${WEBHOOK_API}/subscriptions/${webhookId}/recover`,
      {
        since: options.since,
        ...(options.until ? { until: options.until } : {}),
      },
    );
    const interactive = !options.json && process.stdout.isTTY;
    while (task.state === "queued" || task.state === "running") {
      if (interactive) process.stdout.write(`\r${progressBar(task.done, task.total)}`);
      await new Promise((resolve) => setTimeout(resolve, TASK_POLL_MS));
      ({ data: task } = await api.request<{ data: Task }>("GET", `${WEBHOOK_API}/tasks/${task.id}`));
    }
    if (interactive) process.stdout.write(`\r${progressBar(task.done, task.total)}\n`);
    if (task.state === "failed") throw new Error(`recover task ${task.id} failed: ${task.error}`);
    printRecord(
      options,
      task as unknown as Record<string, unknown>,
      `recovered ${task.done} deliveries (task ${task.id})`,
    );
  });

  return deliveries;
}
