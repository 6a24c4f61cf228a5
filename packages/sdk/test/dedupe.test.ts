import { describe, expect, it } from "vitest";
import { DEFAULT_DEDUPE_TTL_MS, type DedupeStore, Deduplicator, MemoryDedupeStore } from "../src/index.js";

describe("MemoryDedupeStore", () => {
  it("forgets ids after their TTL", () => {
    let now = 1_000;
    const store = new MemoryDedupeStore({ now: () => now });
    store.add("evt_a", 100);
    expect(store.has("evt_a")).toBe(true);
    expect(store.has("evt_b")).toBe(false);
    now = 1_099;
    expect(store.has("evt_a")).toBe(true);
    now = 1_100;
    expect(store.has("evt_a")).toBe(false);
  });

  it("keeps at most maxSize ids, forgetting the oldest first", () => {
    const store = new MemoryDedupeStore({ maxSize: 3 });
    for (const id of ["a", "b", "c", "d"]) store.add(id, 60_000);
    expect(store.size).toBe(3);
    expect(["a", "b", "c", "d"].map((id) => store.has(id))).toEqual([false, true, true, true]);
    store.add("b", 60_000); // re-adding makes it the newest
    store.add("e", 60_000);
    expect(["b", "c", "d", "e"].map((id) => store.has(id))).toEqual([true, false, true, true]);
  });

  it("sweeps expired ids as new ones come", () => {
    let now = 0;
    const store = new MemoryDedupeStore({ now: () => now });
    for (let i = 0; i < 50; i++) store.add(`old_${i}`, 10);
    now = 20;
    store.add("new", 10);
    expect(store.size).toBe(1);
  });
});

describe("Deduplicator", () => {
  const event = { event_id: "evt_01JD3Q8W6ZK4M2X9T7R5B1C0N8" };

  it("runs the work once per event_id", async () => {
    const dedupe = new Deduplicator();
    let runs = 0;
    const first = await dedupe.process(event, () => ++runs);
    const second = await dedupe.process(event.event_id, () => ++runs);
    expect(first).toEqual({ duplicate: false, result: 1 });
    expect(second).toEqual({ duplicate: true });
    expect(runs).toBe(1);
    expect(await dedupe.seen(event)).toBe(true);
    expect(await dedupe.seen("evt_other")).toBe(false);
    expect(dedupe.ttlMs).toBe(DEFAULT_DEDUPE_TTL_MS);
  });

  it("does not remember an event whose work failed, so a retry runs it", async () => {
    const dedupe = new Deduplicator();
    await expect(
      dedupe.process(event, () => {
        throw new Error("database down");
      }),
    ).rejects.toThrow("database down");
    expect(await dedupe.seen(event)).toBe(false);
    expect(await dedupe.process(event, () => "ok")).toEqual({ duplicate: false, result: "ok" });
  });

  it("a copy arriving while the first is processed waits for it and is a duplicate", async () => {
    const dedupe = new Deduplicator();
    let runs = 0;
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const first = dedupe.process(event, async () => {
      runs++;
      await gate;
      return "done";
    });
    const second = dedupe.process(event, async () => ++runs);
    release();
    expect(await first).toEqual({ duplicate: false, result: "done" });
    expect(await second).toEqual({ duplicate: true });
    expect(runs).toBe(1);
  });

  it("a copy waiting on a first that fails gets its turn", async () => {
    const dedupe = new Deduplicator();
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const first = dedupe.process(event, async () => {
      await gate;
      throw new Error("boom");
    });
    const second = dedupe.process(event, async () => "second");
    release();
    await expect(first).rejects.toThrow("boom");
    expect(await second).toEqual({ duplicate: false, result: "second" });
  });

  it("uses a pluggable, asynchronous store with the configured TTL", async () => {
    const added: [string, number][] = [];
    const ids = new Set<string>();
    const store: DedupeStore = {
      async has(id) {
        return ids.has(id);
      },
      async add(id, ttlMs) {
        added.push([id, ttlMs]);
        ids.add(id);
      },
    };
    const dedupe = new Deduplicator({ store, ttlMs: 60_000 });
    expect((await dedupe.process(event, () => 1)).duplicate).toBe(false);
    expect((await dedupe.process(event, () => 2)).duplicate).toBe(true);
    await dedupe.markProcessed("evt_manual");
    expect(added).toEqual([
      [event.event_id, 60_000],
      ["evt_manual", 60_000],
    ]);
  });

  it("refuses a missing event_id", async () => {
    const dedupe = new Deduplicator();
    await expect(dedupe.process({ event_id: "" }, () => 1)).rejects.toThrow(TypeError);
    await expect(dedupe.seen({} as never)).rejects.toThrow(TypeError);
  });
});
