/**
 * Beats this worker's row every fifth of CAREHOOKS_WORKER_TIMEOUT and does
 * the beat's work (store/queue/workers.ts). Deliveries it returns to pending
 * wake the dispatchers. A beat that fails is logged and tried at the next
 * tick: a worker that cannot beat for a whole timeout is taken for dead by
 * the others, and its late outcomes are fenced.
 */
import type { FastifyBaseLogger } from "fastify";
import type { DialectAdapter } from "../store/dialect/adapter.js";
import { type BeatSettings, beatRow, reap, reconcileInFlight, type WorkerIdentity } from "../store/queue/workers.js";

/** How often a worker checks PostgreSQL's in-flight counts against the deliveries (workers.ts, reconcileInFlight). */
const RECONCILE_EVERY_MS = 60_000;

export interface HeartbeatDeps {
  readonly adapter: DialectAdapter;
  readonly me: WorkerIdentity;
  readonly settings: BeatSettings;
  readonly log: FastifyBaseLogger;
  /** Deliveries went back to pending: claim them. */
  readonly returned: (count: number) => void;
  /** In-flight counts were set lower: their slots are free, claim for them. */
  readonly freed: () => void;
}

export class Heartbeat {
  readonly #deps: HeartbeatDeps;
  #timer: NodeJS.Timeout | undefined;
  #beating: Promise<void> | undefined;
  #stopped = false;
  /** When this worker's row was last beaten (`performance.now()`). */
  #beatenAt = Number.NEGATIVE_INFINITY;
  /** When the in-flight counts were last checked (`performance.now()`); the first check is a minute in. */
  #reconciledAt = performance.now();

  constructor(deps: HeartbeatDeps) {
    this.#deps = deps;
  }

  get intervalMs(): number {
    return Math.max(100, Math.floor(this.#deps.settings.timeoutMs / 5));
  }

  /**
   * False once this worker's row has not been beaten for most of the timeout: the others may
   * already take it for dead and return its leases, so it must not claim (it would only send
   * deliveries another worker is about to send too).
   */
  get alive(): boolean {
    return performance.now() - this.#beatenAt < this.#deps.settings.timeoutMs * 0.8;
  }

  /** Registers this worker (the first beat, awaited: its leases must name a known worker), then beats on. */
  async start(): Promise<void> {
    await this.#beat(true);
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#beating;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#beating = this.#beat(false).finally(() => {
        this.#beating = undefined;
        this.#schedule();
      });
    }, this.intervalMs);
  }

  async #beat(first: boolean): Promise<void> {
    const { adapter, me, settings, log } = this.#deps;
    try {
      await beatRow(adapter, me);
      this.#beatenAt = performance.now();
      const { returned, cancelled } = await reap(adapter, me, settings);
      if (returned > 0) {
        log.warn({ returned }, "returned deliveries held by a worker that stopped beating, or whose lease expired");
        this.#deps.returned(returned);
      }
      if (cancelled > 0) log.info({ cancelled }, "cancelled deliveries of deleted or disabled subscriptions");
      if (performance.now() - this.#reconciledAt >= RECONCILE_EVERY_MS) {
        this.#reconciledAt = performance.now();
        for (const recount of await reconcileInFlight(adapter)) {
          log.warn(recount, "a webhook's in-flight count disagreed with its deliveries; set right");
          // Slots freed: claim for them now, not at the next poll.
          if (recount.was > recount.now) this.#deps.freed();
        }
      }
    } catch (error) {
      if (first) throw error;
      log.error({ err: error }, "worker heartbeat failed");
    }
  }
}
