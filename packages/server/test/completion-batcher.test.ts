import { describe, expect, it } from "vitest";
import { CompletionBatcher } from "../src/delivery/completion-batcher.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function recorder(options: { failFirst?: number; writeMs?: number } = {}) {
  const batches: number[][] = [];
  const written: number[][] = [];
  let failures = options.failFirst ?? 0;
  let running = 0;
  let overlapped = false;
  const batcher = new CompletionBatcher<number, number>({
    maxItems: 3,
    maxDelayMs: 30,
    retryDelayMs: 5,
    write: async (items) => {
      running += 1;
      if (running > 1) overlapped = true;
      await sleep(options.writeMs ?? 0);
      running -= 1;
      batches.push([...items]);
      if (failures > 0) {
        failures -= 1;
        throw new Error("database down");
      }
      return items.length;
    },
    written: (items) => {
      written.push([...items]);
    },
    failed: () => {},
    keepTrying: () => true,
  });
  return { batcher, batches, written, overlapped: () => overlapped };
}

describe("the completion batcher", () => {
  it("writes as soon as a batch is full, and a partial one after the delay", async () => {
    const { batcher, written } = recorder();
    for (const n of [1, 2, 3]) batcher.add(n);
    await sleep(5);
    expect(written).toEqual([[1, 2, 3]]);
    batcher.add(4);
    await sleep(5);
    expect(written).toEqual([[1, 2, 3]]);
    await sleep(50);
    expect(written).toEqual([[1, 2, 3], [4]]);
  });

  it("writes one batch at a time; what arrives meanwhile goes in the next", async () => {
    const { batcher, written, overlapped } = recorder({ writeMs: 20 });
    for (const n of [1, 2, 3]) batcher.add(n);
    await sleep(5);
    for (const n of [4, 5, 6, 7]) batcher.add(n);
    await batcher.flush();
    expect(overlapped()).toBe(false);
    expect(written).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
    expect(batcher.size).toBe(0);
  });

  it("gives what arrives during a write its own delay, rather than writing it as soon as that write ends", async () => {
    const started: { items: number[]; at: number }[] = [];
    const batcher = new CompletionBatcher<number, void>({
      maxItems: 3,
      maxDelayMs: 30,
      retryDelayMs: 5,
      write: async (items) => {
        started.push({ items: [...items], at: performance.now() });
        if (started.length === 1) await sleep(10);
      },
      written: () => {},
      failed: () => {},
      keepTrying: () => true,
    });
    for (const n of [1, 2, 3]) batcher.add(n);
    const addedAt = performance.now();
    batcher.add(4);
    batcher.add(5);
    await sleep(60);
    expect(started.map((write) => write.items)).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
    // Its own 30 ms, not the first write's 10: a timer may fire a millisecond or two early by
    // performance.now() (libuv schedules it from its loop's cached millisecond clock; 28.7 ms seen in CI).
    expect((started[1]?.at ?? 0) - addedAt).toBeGreaterThanOrEqual(25);
  });

  it("writes a failed batch again until it is written, and only then reports it written", async () => {
    const { batcher, batches, written } = recorder({ failFirst: 2 });
    batcher.add(1);
    await batcher.flush();
    expect(batches).toEqual([[1], [1], [1]]);
    expect(written).toEqual([[1]]);
  });

  it("gives a batch up once it may stop trying", async () => {
    let tries = 0;
    const batcher = new CompletionBatcher<number, void>({
      maxItems: 10,
      maxDelayMs: 1,
      retryDelayMs: 1,
      write: async () => {
        tries += 1;
        throw new Error("database down");
      },
      written: () => {
        throw new Error("never written");
      },
      failed: () => {},
      keepTrying: () => tries < 3,
    });
    batcher.add(1);
    await batcher.flush();
    expect(tries).toBe(3);
  });
});
