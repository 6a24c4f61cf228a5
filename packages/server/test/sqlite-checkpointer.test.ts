/**
 * Background checkpoints: the serving connections never copy the log back
 * themselves (the COMMIT that did held its thread for a checkpoint's fsyncs);
 * a thread of their own keeps the log from growing. Run from `dist`, as
 * `serve` runs it: the checkpointer is a worker thread of the built module.
 */
import { closeSync, openSync, readSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import type { DialectAdapter } from "../src/store/dialect/adapter.js";
import { tempDir } from "./support/databases.js";

const built: typeof import("../src/store/open.js") = await import(
  new URL("../dist/store/open.js", import.meta.url).href
);

const checkpoints: typeof import("../src/store/dialect/sqlite-checkpointer.js") = await import(
  new URL("../dist/store/dialect/sqlite-checkpointer.js", import.meta.url).href
);
const turns: typeof import("../src/store/dialect/sqlite-write-turns.js") = await import(
  new URL("../dist/store/dialect/sqlite-write-turns.js", import.meta.url).href
);

const opened: DialectAdapter[] = [];
/** Checkpointers started by a test on their own, stopped after it. */
const stopping: InstanceType<typeof checkpoints.Checkpointer>[] = [];
afterEach(async () => {
  for (const adapter of opened.splice(0)) await adapter.close();
  for (const checkpointer of stopping.splice(0)) await checkpointer.stop();
});

const BATCHES = 16;
const ROWS_PER_BATCH = 15;
/** Each row is about 8 KiB: two overflow pages and its leaf, three frames of the log per commit. */
const NAME = "x".repeat(8000);

/**
 * The log's checkpoint sequence number (bytes 12–15 of its header): SQLite adds one each time it
 * starts the log over, and writes it with the first frame after.
 */
function restartsOf(log: string): number {
  const header = Buffer.alloc(16);
  const fd = openSync(log, "r");
  try {
    return readSync(fd, header, 0, 16, 0) === 16 ? header.readUInt32BE(12) : 0;
  } finally {
    closeSync(fd);
  }
}

async function open(checkpoints: "auto" | "background", sqliteSynchronous: "NORMAL" | "FULL" = "NORMAL") {
  const file = path.join(tempDir(), "checkpoints.db");
  const adapter = built.openDatabase(`sqlite:${file}`, {
    sqliteSynchronous,
    poolSize: 1,
    sqliteCheckpoints: checkpoints,
  });
  opened.push(adapter);
  await built.migrateDatabase(adapter);
  const setting = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(adapter.db);
  return { adapter, file, autoCheckpoint: setting.rows[0]?.wal_autocheckpoint };
}

/** Writes 16 rows of about 8 KiB at once: one shared transaction, as concurrent API requests make. */
function writeTogether(adapter: DialectAdapter, round: number): Promise<unknown> {
  return Promise.all(
    Array.from({ length: 16 }, (_, n) =>
      adapter.db
        .insertInto("setting")
        .values({ key: `k${round}.${n}`, value: NAME })
        .execute(),
    ),
  );
}

/** Writes BATCHES × ROWS_PER_BATCH rows, one commit each, pausing between batches; returns the frames in the log then. */
async function writeAndMeasure(checkpoints: "auto" | "background", autoCheckpointOff: boolean) {
  const { adapter, autoCheckpoint } = await open(checkpoints);
  if (autoCheckpointOff) await sql`pragma wal_autocheckpoint = 0`.execute(adapter.db);
  for (let batch = 0; batch < BATCHES; batch++) {
    for (let row = 0; row < ROWS_PER_BATCH; row++) {
      await adapter.db
        .insertInto("business")
        .values({ id: `biz_${batch}_${row}`, name: `${NAME}${batch}.${row}`, created_at: batch })
        .execute();
    }
    // The checkpointer runs every 100 ms.
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  const stats = adapter.storageStats?.();
  // Frames written since the log was last started over (read by a checkpoint, which then copies them).
  const after = await sql<{ log: number }>`pragma wal_checkpoint(PASSIVE)`.execute(adapter.db);
  return { autoCheckpoint, logFrames: after.rows[0]?.log ?? Number.NaN, stats };
}

describe("SQLite checkpoints in the background", () => {
  it("turn the serving connection's own checkpoints off and keep the log from growing", async () => {
    const background = await writeAndMeasure("background", false);
    expect(background.autoCheckpoint).toBe(0);
    // Without anything checkpointing, the same writes grow the log past everything written.
    const none = await writeAndMeasure("auto", true);
    // Every commit appends at least the row's two overflow pages and its leaf.
    const written = BATCHES * ROWS_PER_BATCH * 3;
    console.info(
      `frames in the log after the writes: ${background.logFrames} checkpointed in the background, ${none.logFrames} not`,
    );
    expect(none.logFrames).toBeGreaterThanOrEqual(written);
    // Checkpointed between batches, the log starts over: a batch or two of frames are left, not all of them.
    expect(background.logFrames).toBeLessThan(none.logFrames / 4);
    // What /metrics reports: checkpoints that copied pages (one or more per pause), and the log they left.
    expect(background.stats?.checkpoints).toBeGreaterThanOrEqual(BATCHES / 2);
    expect(background.stats?.logFrames).toBeGreaterThan(0);
    expect(none.stats).toBeUndefined();
  });

  it("start the log over under a steady stream of commits, whose transaction is nearly always open", async () => {
    // FULL: the shared transaction stays open while the log is flushed, so a checkpoint nearly
    // always runs beside an open transaction, whose frames it cannot copy.
    const { adapter, file } = await open("background", "FULL");
    const log = `${file}-wal`;
    const firstRestarts = restartsOf(log);
    let largestLog = 0;
    // Without restarts the log passes the size cap in about two seconds here; a slow disk hits the time cap.
    const deadline = Date.now() + 15_000;
    // What /metrics reports counts only the whole logs copied back in a write turn. A background checkpoint
    // between turns copies the whole log too when no transaction happens to be open, and the log starts
    // over after it just the same: once in CI, three restarts of the file came with one in a write turn.
    const inTurns = () => adapter.storageStats?.().logRestarts ?? 0;
    for (let round = 0; restartsOf(log) - firstRestarts < 3 || inTurns() < 1; round++) {
      if (largestLog > 200 * 2 ** 20 || Date.now() > deadline) break;
      await writeTogether(adapter, round);
      largestLog = Math.max(largestLog, statSync(log).size);
    }
    const restarts = restartsOf(log) - firstRestarts;
    console.info(
      `log started over ${restarts} times, ${inTurns()} after a copy in a write turn; log file at most ${(largestLog / 2 ** 20).toFixed(1)} MiB`,
    );
    expect(restarts).toBeGreaterThanOrEqual(3);
    expect(inTurns()).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it("take no write turn while the log is idle", async () => {
    const { adapter } = await open("background", "FULL");
    for (let round = 0; round < 40; round++) {
      await writeTogether(adapter, round);
    }
    // A few checkpoints (every 100 ms) copy the burst back; then nothing is written.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const settled = adapter.storageStats?.().logRestarts;
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(adapter.storageStats?.().logRestarts).toBe(settled);
  });

  it("report a file it cannot checkpoint once, with SQLite's message, and stop cleanly after", async () => {
    const file = path.join(tempDir(), "not-a-database.db");
    writeFileSync(file, Buffer.alloc(8192, 0x5a));
    const failures: Error[] = [];
    const failed = new Promise<void>((resolve) => {
      const checkpointer = new checkpoints.Checkpointer(file, new turns.WriteTurns().sharedState, (error) => {
        failures.push(error);
        resolve();
      });
      stopping.push(checkpointer);
    });
    await failed;
    await stopping.splice(0)[0]?.stop();
    expect(failures.map((error) => error.message)).toEqual([
      expect.stringMatching(/^checkpointing the SQLite log failed: .*not a database/),
    ]);
  });

  it("leaves SQLite's own checkpoints on by default", async () => {
    expect((await open("auto")).autoCheckpoint).toBe(1000);
  });
});
