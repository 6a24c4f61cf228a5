/**
 * The embedded database's commits: durable before they are answered, with
 * fsyncs shared between commits that arrive together, on a real file.
 */
import { pbkdf2 } from "node:crypto";
import path from "node:path";
import { promisify } from "node:util";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { Metrics } from "../src/ops/metrics.js";
import type { SqlStatements } from "../src/store/dialect/adapter.js";
import { DurableSqliteDialect, type SharedLimits } from "../src/store/dialect/sqlite-durable.js";
import { BACKGROUND_FLUSH_MS, WalFlusher, type WalFlusherOptions } from "../src/store/dialect/sqlite-wal-flusher.js";
import { WriteTurns } from "../src/store/dialect/sqlite-write-turns.js";
import { migrateDatabase, openDatabase } from "../src/store/open.js";
import { tempDir } from "./support/databases.js";
import { until } from "./support/fixtures.js";

interface Tables {
  item: { id: number; label: string };
}

const opened: Kysely<Tables>[] = [];
const peers: WalFlusher[] = [];
afterEach(async () => {
  for (const db of opened.splice(0)) await db.destroy();
  for (const peer of peers.splice(0)) peer.close();
});

/** No age limit unless a test asks for one: a slow machine must not split the shared transactions a test is about. */
const UNHURRIED: SharedLimits = { members: 100, ms: 60_000 };

function open(
  walPath?: (file: string) => string,
  onFailure?: (error: Error) => void,
  limits: SharedLimits = UNHURRIED,
  flusher: WalFlusherOptions = {},
): { db: Kysely<Tables>; wal: WalFlusher; file: string } {
  const file = path.join(tempDir(), "durable.db");
  const raw = new BetterSqlite3(file);
  raw.pragma("journal_mode = WAL");
  raw.pragma("synchronous = NORMAL");
  raw.exec("CREATE TABLE item (id INTEGER PRIMARY KEY, label TEXT NOT NULL UNIQUE)");
  const wal = new WalFlusher(walPath ? walPath(file) : `${file}-wal`, onFailure, undefined, flusher);
  const db = new Kysely<Tables>({ dialect: new DurableSqliteDialect(raw, { wal, limits }) });
  opened.push(db);
  return { db, wal, file };
}

/** A database whose flusher counts relaxed commits apart, as `serve`'s does (the dispatcher's claims and outcomes). */
function openRelaxing() {
  const file = path.join(tempDir(), "relaxed.db");
  const raw = new BetterSqlite3(file);
  raw.pragma("journal_mode = WAL");
  raw.pragma("synchronous = NORMAL");
  raw.exec("CREATE TABLE item (id INTEGER PRIMARY KEY, label TEXT NOT NULL UNIQUE)");
  const wal = new WalFlusher(`${file}-wal`, undefined, undefined, { relaxedCommits: true });
  const dialect = new DurableSqliteDialect(raw, { wal, limits: UNHURRIED });
  const db = new Kysely<Tables>({ dialect });
  opened.push(db);
  return { raw, wal, dialect, db };
}

/** A database with one commit on disk, and the flusher of a connection on another thread counting with it. */
async function withPeer(): Promise<{ wal: WalFlusher; peer: WalFlusher }> {
  const { db, wal, file } = open();
  await db.insertInto("item").values({ id: 1, label: "first" }).execute();
  const peer = new WalFlusher(`${file}-wal`, undefined, wal.sharedState);
  peers.push(peer);
  return { wal, peer };
}

/** libuv's pool kept busy, so the next fsync waits behind it: a flush that runs for a while. */
const busyPool = () =>
  Array.from({ length: Number(process.env.UV_THREADPOOL_SIZE ?? 4) }, () =>
    promisify(pbkdf2)("carehooks", "salt", 400_000, 32, "sha256"),
  );
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** A transaction that inserts one item. */
function insertInTransaction(db: Kysely<Tables>, id: number, label: string) {
  return db.transaction().execute((trx) => trx.insertInto("item").values({ id, label }).execute());
}

describe("durable SQLite commits", () => {
  it("answers each commit only once it is flushed, sharing fsyncs between commits that arrive together", async () => {
    const { db, wal } = open();
    const transactions = Array.from({ length: 100 }, (_, i) =>
      db.transaction().execute(async (trx) => {
        // The connection is this transaction's until COMMIT, so its commit is the next one counted.
        const commitNumber = wal.stats.committed + 1;
        await trx
          .insertInto("item")
          .values({ id: i, label: `tx-${i}-a` })
          .execute();
        await trx
          .insertInto("item")
          .values({ id: 1000 + i, label: `tx-${i}-b` })
          .execute();
        return commitNumber;
      }),
    );
    const singles = Array.from({ length: 100 }, (_, i) =>
      db
        .insertInto("item")
        .values({ id: 2000 + i, label: `single-${i}` })
        .execute()
        .then(() => wal.stats.flushed),
    );
    const flushedWhenAnswered = await Promise.all(
      transactions.map((done) => done.then((commitNumber) => ({ commitNumber, flushed: wal.stats.flushed }))),
    );
    for (const { commitNumber, flushed } of flushedWhenAnswered) expect(flushed).toBeGreaterThanOrEqual(commitNumber);
    for (const flushed of await Promise.all(singles)) expect(flushed).toBeGreaterThanOrEqual(1);

    const { count } = await db
      .selectFrom("item")
      .select((eb) => eb.fn.countAll<number>().as("count"))
      .executeTakeFirstOrThrow();
    expect(count).toBe(300);
    // Begun in one turn of the event loop, they share one SQLite transaction: far fewer commits than writes.
    expect(wal.stats.committed).toBeGreaterThanOrEqual(1);
    expect(wal.stats.committed).toBeLessThan(10);
    expect(wal.stats.flushed).toBe(wal.stats.committed);
    expect(wal.stats.flushes).toBeGreaterThanOrEqual(1);
    expect(wal.stats.flushes).toBeLessThanOrEqual(wal.stats.committed);
  });

  it("commits the transactions of one turn of the event loop together, and those of a later turn apart", async () => {
    const { db, wal } = open();
    const insert = (id: number) => insertInTransaction(db, id, `item-${id}`);
    await Promise.all([insert(1), insert(2), insert(3)]);
    expect(wal.stats).toMatchObject({ committed: 1, flushed: 1 });
    await insert(4);
    await insert(5);
    expect(wal.stats).toMatchObject({ committed: 3, flushed: 3 });
    // One turn's worth of 250: no shared transaction takes more than 100, so the other thread gets its turns.
    await Promise.all(Array.from({ length: 250 }, (_, i) => insert(100 + i)));
    expect(wal.stats.committed - 3).toBeGreaterThanOrEqual(3);
    expect(wal.stats.committed - 3).toBeLessThan(250);

    // With the serving limit (10 ms), one that old is committed as its member lets go, even within the turn.
    const aged = open(undefined, undefined, { members: 100, ms: 10 });
    const busy = aged.db.transaction().execute(async (trx) => {
      await trx.insertInto("item").values({ id: 1, label: "busy" }).execute();
      const until = performance.now() + 20;
      while (performance.now() < until) {} // work between statements, in the same turn
    });
    const next = insertInTransaction(aged.db, 2, "next");
    await Promise.all([busy, next]);
    expect(aged.wal.stats).toMatchObject({ committed: 2, flushed: 2 });
  });

  it("keeps a shared transaction open while a flush runs, for the turns after it to join, within its age limit", async () => {
    const { db, wal } = open();
    const pool = busyPool();
    const first = insertInTransaction(db, 1, "first");
    while (!wal.flushing) await nextTurn();
    expect(wal.stats.committed).toBe(1);
    const second = insertInTransaction(db, 2, "second");
    await nextTurn();
    const third = insertInTransaction(db, 3, "third");
    await nextTurn();
    // A COMMIT now would wait for the next flush anyway: the two later turns share one, made when this flush ends.
    expect(wal.flushing).toBe(true);
    expect(wal.stats.committed).toBe(1);
    await Promise.all([...pool, first, second, third]);
    expect(wal.stats).toMatchObject({ committed: 2, flushed: 2 });

    // With the serving limit (10 ms), it is committed when that old, though the first flush still runs.
    const aged = open(undefined, undefined, { members: 100, ms: 10 });
    const agedPool = busyPool();
    const one = insertInTransaction(aged.db, 1, "one");
    while (!aged.wal.flushing) await nextTurn();
    const two = insertInTransaction(aged.db, 2, "two");
    // Polled on timers, not turns: a timer that fires a little early must still commit it.
    while (aged.wal.stats.committed < 2) await new Promise((resolve) => setTimeout(resolve, 1));
    expect(aged.wal.stats.flushes).toBe(0);
    await Promise.all([...agedPool, one, two]);
    expect(aged.wal.stats).toMatchObject({ committed: 2, flushed: 2 });

    // A connection that does not wait for its own commits (the dispatcher thread's) gains nothing by waiting:
    // each commits at once, and the two go to disk together in the background.
    const { db: ownDb, wal: own } = open(undefined, undefined, UNHURRIED, { waitForOwnCommits: false });
    await insertInTransaction(ownDb, 1, "one");
    await insertInTransaction(ownDb, 2, "two");
    expect(own.stats).toMatchObject({ committed: 2, flushes: 0 });
  });

  it("answers a relaxed queue transaction once what it read is on disk, and flushes its own commits in the background", async () => {
    const { wal, dialect, db } = openRelaxing();
    const driver = dialect.createDriver();
    /** A relaxed queue transaction inserting one item, as a claim or an outcome writes. */
    const relaxedInsert = (id: number, label: string) =>
      driver.transaction(true, (sql) => sql.run("INSERT INTO item (id, label) VALUES (?, ?)", [id, label]));

    // Its own commits: answered at once, on disk within BACKGROUND_FLUSH_MS, one fsync for both.
    const started = performance.now();
    await relaxedInsert(1, "claim");
    await relaxedInsert(2, "outcome");
    // Unless this process stalled for the whole delay, the timer has not fired yet.
    const inTime = performance.now() - started < BACKGROUND_FLUSH_MS;
    expect(wal.stats).toMatchObject({ committed: 2, ...(inTime ? { flushed: 0, flushes: 0 } : {}) });
    await until(() => wal.stats.flushed === 2, 20 * BACKGROUND_FLUSH_MS);
    if (inTime) expect(wal.stats.flushes).toBe(1);

    // A strict commit before it is waited for, as the event a claim leases must be on disk before it is sent.
    const pool = busyPool();
    const strict = insertInTransaction(db, 3, "event");
    while (!wal.flushing) await nextTurn();
    const read = await driver.transaction(true, (sql) =>
      sql.all<{ label: string }>("SELECT label FROM item WHERE id = ?", [3]),
    );
    expect(read).toEqual([{ label: "event" }]);
    expect(wal.stats).toMatchObject({ committed: 3, flushed: 3 });
    await Promise.all([...pool, strict]);

    // A strict checkout waits for the relaxed commits before it: no answer shows what a power cut could take back.
    await relaxedInsert(4, "claim 2");
    expect(wal.stats).toMatchObject({ committed: 4, flushed: 3 });
    await db.selectFrom("item").selectAll().execute();
    expect(wal.stats.flushed).toBe(4);

    // A shared transaction a strict checkout wrote into is strict, whoever began it: both wait for its flush.
    // The relaxed one began it and is awaited alone: it is answered only after the flush all the same.
    const flushes = wal.stats.flushes;
    const claim = relaxedInsert(5, "claim 3");
    const joined = insertInTransaction(db, 6, "create");
    await claim;
    expect(wal.stats).toMatchObject({ committed: 5, flushed: 5, flushes: flushes + 1 });
    await joined;
    // Relaxed alone again: not waited for.
    await relaxedInsert(7, "claim 4");
    expect(wal.stats).toMatchObject({ committed: 6, flushed: 5 });
    await until(() => wal.stats.flushed === 6, 20 * BACKGROUND_FLUSH_MS);

    // One that waits for a strict commit whose flush is already running: that flush does not cover
    // its own commit, which still goes to disk in the background.
    const slow = busyPool();
    const create = insertInTransaction(db, 8, "create 2");
    while (!wal.flushing) await nextTurn();
    await relaxedInsert(9, "claim 5");
    await Promise.all([...slow, create]);
    expect(wal.stats.committed).toBe(8);
    await until(() => wal.stats.flushed === 8, 20 * BACKGROUND_FLUSH_MS);
  });

  it("runs a queue transaction, with no query layer, as it runs a Kysely one: shared, rolled back alone", async () => {
    const { raw, wal, dialect, db } = openRelaxing();
    const driver = dialect.createDriver();
    const INSERT = "INSERT INTO item (id, label) VALUES (@id, @label) RETURNING label";

    // One turn: a Kysely transaction and two queue transactions share one COMMIT; the one that fails goes alone.
    const results = await Promise.allSettled([
      insertInTransaction(db, 1, "create"),
      driver.transaction(false, (sql) => sql.all<{ label: string }>(INSERT, { id: 2, label: "claim" })),
      driver.transaction(false, (sql) => {
        expect(sql.run("UPDATE item SET label = label || '!' WHERE id = 2", [])).toBe(1);
        sql.run("INSERT INTO item (id, label) VALUES (?, ?)", [3, "kept out"]);
        sql.run("INSERT INTO item (id, label) VALUES (?, ?)", [4, "kept out"]); // UNIQUE violation
      }),
    ]);
    expect(results.map((result) => result.status)).toEqual(["fulfilled", "fulfilled", "rejected"]);
    expect((results[1] as PromiseFulfilledResult<{ label: string }[]>).value).toEqual([{ label: "claim" }]);
    expect(wal.stats).toMatchObject({ committed: 1, flushed: 1 });
    const rows = await db.selectFrom("item").select("label").orderBy("id").execute();
    // The update of the claim went with the transaction that failed.
    expect(rows.map((row) => row.label)).toEqual(["create", "claim"]);

    // An error of its own work rolls it back too.
    await expect(
      driver.transaction(false, (sql) => {
        sql.run("INSERT INTO item (id, label) VALUES (?, ?)", [5, "thrown"]);
        throw new Error("nothing to send");
      }),
    ).rejects.toThrow("nothing to send");
    expect(raw.prepare("SELECT count(*) AS n FROM item").get()).toEqual({ n: 2 });

    // Work that awaits is refused and rolled back: its statements after the await would run in whatever
    // transaction is open then. Statements kept for after the transaction are refused too.
    let kept: SqlStatements | undefined;
    await expect(
      driver.transaction(false, async (sql) => {
        sql.run("INSERT INTO item (id, label) VALUES (?, ?)", [5, "awaited"]);
        kept = sql;
      }),
    ).rejects.toThrow("must be synchronous");
    await expect(
      driver.transaction(false, async () => {
        await nextTurn();
        throw new Error("later");
      }),
    ).rejects.toThrow("must be synchronous");
    expect(() => kept?.run("INSERT INTO item (id, label) VALUES (?, ?)", [5, "late"])).toThrow("not after it");
    // A statement read as the wrong kind is refused rather than answered with nothing.
    await expect(driver.transaction(false, (sql) => sql.run(INSERT, { id: 5, label: "returns" }))).rejects.toThrow(
      "read them",
    );
    await expect(driver.transaction(false, (sql) => sql.all("DELETE FROM item WHERE id = 1", []))).rejects.toThrow(
      "run it",
    );
    expect(raw.prepare("SELECT count(*) AS n FROM item").get()).toEqual({ n: 2 });
  });

  it("fails every transaction that committed into a shared one that is lost, and goes on afterwards", async () => {
    const { db, wal } = open();
    const results = await Promise.allSettled([
      insertInTransaction(db, 1, "lost with the rest"),
      db.transaction().execute(async (trx) => {
        await trx.insertInto("item").values({ id: 2, label: "lost" }).execute();
        // What disk full or an I/O error can do: SQLite rolls the whole transaction back.
        await sql`rollback`.execute(trx);
      }),
      db.insertInto("item").values({ id: 3, label: "after" }).execute(),
    ]);
    expect(results.map((result) => result.status)).toEqual(["rejected", "rejected", "fulfilled"]);
    expect((results[0] as PromiseRejectedResult).reason.message).toMatch(/shared SQLite transaction was rolled back/);
    // A member lost through another's failure may be tried again: the code says so.
    expect((results[0] as PromiseRejectedResult).reason.code).toBe("SQLITE_ABORT_ROLLBACK");
    const rows = await db.selectFrom("item").select("label").orderBy("id").execute();
    expect(rows.map((row) => row.label)).toEqual(["after"]);
    // The lost transaction's write turn ended with it: later transactions commit.
    await insertInTransaction(db, 4, "later");
    expect(wal.stats.flushed).toBe(wal.stats.committed);
  });

  it("answers a statement that ran inside an open shared transaction only once that transaction is on disk", async () => {
    const { db, wal } = open();
    const write = insertInTransaction(db, 1, "shared");
    const read = db
      .selectFrom("item")
      .select("label")
      .execute()
      .then((rows) => ({ rows, flushed: wal.stats.flushed }));
    const single = db
      .insertInto("item")
      .values({ id: 2, label: "single" })
      .execute()
      .then(() => wal.stats.flushed);
    expect(await read).toEqual({ rows: [{ label: "shared" }], flushed: 1 });
    expect(await single).toBe(1);
    await write;
    expect(wal.stats.committed).toBe(1);
  });

  it("answers an error from a statement run inside a shared transaction only once that transaction is settled", async () => {
    const { db, wal } = open();
    const member = insertInTransaction(db, 1, "taken");
    // A duplicate of a row no commit has made yet: not a "duplicate" answer until that row is committed.
    const duplicate = db
      .insertInto("item")
      .values({ id: 2, label: "taken" })
      .execute()
      .then(
        () => "inserted",
        (error: { code?: string }) => ({ code: error.code, committed: wal.stats.committed }),
      );
    await member;
    expect(await duplicate).toEqual({ code: "SQLITE_CONSTRAINT_UNIQUE", committed: 1 });

    // When the shared transaction is lost, the duplicate never existed: the answer is that loss, not a conflict.
    const lost = db.transaction().execute(async (trx) => {
      await trx.insertInto("item").values({ id: 3, label: "again" }).execute();
    });
    const again = db.insertInto("item").values({ id: 4, label: "again" }).execute();
    const breaker = db.transaction().execute(async (trx) => {
      await sql`rollback`.execute(trx);
    });
    const results = await Promise.allSettled([lost, again, breaker]);
    expect(results.map((result) => result.status)).toEqual(["rejected", "rejected", "rejected"]);
    expect((results[1] as PromiseRejectedResult).reason.message).toMatch(/shared SQLite transaction was rolled back/);
    const rows = await db.selectFrom("item").select("label").orderBy("id").execute();
    expect(rows.map((row) => row.label)).toEqual(["taken"]);
  });

  it("starts afresh when SQLite rolled a shared transaction back under a member that carried on", async () => {
    const { db, wal } = open();
    const carriedOn = db.transaction().execute(async (trx) => {
      await trx.insertInto("item").values({ id: 1, label: "gone" }).execute();
      // What SQLITE_FULL can do mid-transaction, with the error caught by the caller.
      await sql`rollback`.execute(trx);
    });
    const next = insertInTransaction(db, 2, "kept");
    const [first, second] = await Promise.allSettled([carriedOn, next]);
    expect(first.status).toBe("rejected");
    expect(second.status).toBe("fulfilled");
    const rows = await db.selectFrom("item").select("label").orderBy("id").execute();
    expect(rows.map((row) => row.label)).toEqual(["kept"]);
    // Every row answered was counted and flushed.
    expect(wal.stats.flushed).toBe(wal.stats.committed);
  });

  it("rolls back, never commits, a transaction still running when the database is closed", async () => {
    const { db, file } = open();
    opened.splice(opened.indexOf(db), 1);
    const running = db.transaction().execute(async (trx) => {
      await trx.insertInto("item").values({ id: 1, label: "half" }).execute();
      await new Promise((resolve) => setTimeout(resolve, 50));
      await trx.insertInto("item").values({ id: 2, label: "other half" }).execute();
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    await db.destroy();
    await expect(running).rejects.toThrow();
    const raw = new BetterSqlite3(file);
    try {
      expect(raw.prepare("SELECT count(*) AS n FROM item").get()).toEqual({ n: 0 });
    } finally {
      raw.close();
    }
  });

  it("holds the write turn for the whole shared transaction: a connection on another thread writes after its commit", async () => {
    const file = path.join(tempDir(), "turns.db");
    const connect = (turns: WriteTurns) => {
      const raw = new BetterSqlite3(file, { timeout: 5000 });
      raw.pragma("journal_mode = WAL");
      raw.exec("CREATE TABLE IF NOT EXISTS item (id INTEGER PRIMARY KEY, label TEXT NOT NULL UNIQUE)");
      const db = new Kysely<Tables>({ dialect: new DurableSqliteDialect(raw, { turns, limits: UNHURRIED }) });
      opened.push(db);
      return db;
    };
    const here = new WriteTurns();
    const there = new WriteTurns(here.sharedState);
    const [a, b] = [connect(here), connect(there)];
    const order: string[] = [];
    const first = a.transaction().execute(async (trx) => {
      await trx.insertInto("item").values({ id: 1, label: "a1" }).execute();
      order.push("a1");
    });
    // Begun while a's shared transaction holds the turn: it waits for a's COMMIT, not SQLite's busy handler.
    const other = b.transaction().execute(async (trx) => {
      const seen = await trx.selectFrom("item").select("label").orderBy("id").execute();
      order.push(`b saw ${seen.map((row) => row.label).join(",")}`);
      await trx.insertInto("item").values({ id: 3, label: "b" }).execute();
    });
    const second = a.transaction().execute(async (trx) => {
      await trx.insertInto("item").values({ id: 2, label: "a2" }).execute();
      order.push("a2");
    });
    await Promise.all([first, other, second]);
    expect(order).toEqual(["a1", "a2", "b saw a1,a2"]);
  });

  it("rolls a failing transaction back alone while the others commit", async () => {
    const { db } = open();
    const results = await Promise.allSettled([
      db.insertInto("item").values({ id: 1, label: "first" }).execute(),
      db.transaction().execute(async (trx) => {
        await trx.insertInto("item").values({ id: 2, label: "kept out" }).execute();
        await trx.insertInto("item").values({ id: 3, label: "first" }).execute(); // UNIQUE violation
      }),
      db.transaction().execute(async (trx) => {
        await trx.insertInto("item").values({ id: 4, label: "second" }).execute();
      }),
    ]);
    expect(results.map((result) => result.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    const rows = await db.selectFrom("item").select("label").orderBy("id").execute();
    expect(rows.map((row) => row.label)).toEqual(["first", "second"]);
  });

  it("lets a read show nothing a power loss could still take back", async () => {
    const { db, wal } = open();
    const write = db.insertInto("item").values({ id: 1, label: "written" }).execute();
    const rows = await db.selectFrom("item").select("label").execute();
    expect(rows).toEqual([{ label: "written" }]);
    expect(wal.stats.flushed).toBe(1);
    await write;
  });

  it("counts writes with RETURNING, and only transactions that wrote, but makes every answer wait for the disk", async () => {
    const { db, wal } = open();
    const returned = await db.insertInto("item").values({ id: 1, label: "returned" }).returning("id").execute();
    expect(returned).toEqual([{ id: 1 }]);
    expect(wal.stats).toMatchObject({ committed: 1, flushed: 1 });

    await db.transaction().execute((trx) => trx.selectFrom("item").selectAll().execute());
    expect(wal.stats.committed).toBe(1);

    // A transaction that fails on what another commit made answers only once that commit is on disk.
    const write = db.insertInto("item").values({ id: 2, label: "taken" }).execute();
    const refused = db
      .transaction()
      .execute(async (trx) => {
        const taken = await trx.selectFrom("item").select("id").where("label", "=", "taken").executeTakeFirst();
        if (taken) throw new Error("conflict");
      })
      .then(
        () => "committed",
        () => wal.stats.flushed,
      );
    expect(await refused).toBe(2);
    await write;
  });

  it("fails the write and every later statement once a flush fails, and says so once", async () => {
    const failures: Error[] = [];
    const { db, wal } = open(
      (file) => path.join(path.dirname(file), "missing", "durable.db-wal"),
      (error) => failures.push(error),
    );
    const error = await db
      .insertInto("item")
      .values({ id: 1, label: "unsure" })
      .execute()
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "SQLITE_IOERR_FSYNC" });
    expect((error as Error).message).toMatch(/flushing the SQLite write-ahead log failed/);
    await expect(db.selectFrom("item").selectAll().execute()).rejects.toMatchObject({ code: "SQLITE_IOERR_FSYNC" });
    await expect(db.transaction().execute(async () => 1)).rejects.toMatchObject({ code: "SQLITE_IOERR_FSYNC" });
    await expect(sql`select 1`.execute(db)).rejects.toMatchObject({ code: "SQLITE_IOERR_FSYNC" });
    expect(wal.stats.flushed).toBe(0);
    expect(failures).toHaveLength(1);
  });

  it("shares its counters with a connection on another thread: a flush on either covers commits made on both", async () => {
    const { wal, peer } = await withPeer();
    // A commit on this side, not yet flushed.
    wal.committing();
    wal.committed();
    expect(peer.stats).toEqual({ committed: 2, flushed: 1, flushes: 1 });
    // A read on the peer's side waits for it, and its own fsync makes it durable.
    await peer.durable();
    expect(wal.stats).toEqual({ committed: 2, flushed: 2, flushes: 2 });
    // Nothing is left to flush on this side.
    await wal.durable();
    expect(wal.stats.flushes).toBe(2);
  });

  it("makes a read on another thread wait for a commit still being written here", async () => {
    const { wal, peer } = await withPeer();
    // COMMIT is running on this side: the peer may already read its rows, not yet on disk.
    wal.committing();
    let answered = false;
    const read = peer.durable().then(() => {
      answered = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(answered).toBe(false);
    wal.committed();
    await read;
    expect(wal.stats).toMatchObject({ committed: 2, flushed: 2 });
    // It waited without flushing in a loop: one flush for the first commit, one for this.
    expect(wal.stats.flushes).toBe(2);
  });

  it("stops the connections on other threads too once a flush fails", async () => {
    const { db, wal, file } = open((file) => path.join(path.dirname(file), "missing", "durable.db-wal"));
    const peer = new WalFlusher(`${file}-wal`, undefined, wal.sharedState);
    await expect(db.insertInto("item").values({ id: 1, label: "unsure" }).execute()).rejects.toMatchObject({
      code: "SQLITE_IOERR_FSYNC",
    });
    expect(() => peer.check()).toThrow(/write-ahead log failed: a flush on another thread failed/);
    await expect(peer.durable()).rejects.toMatchObject({ code: "SQLITE_IOERR_FSYNC" });
  });

  it("gives writers on different connections turns in arrival order, each waiting without blocking", async () => {
    const first = new WriteTurns();
    const second = new WriteTurns(first.sharedState);
    const order: string[] = [];
    await first.take();
    const waiting = [
      second.take().then(() => order.push("second")),
      first.take().then(() => order.push("first again")),
    ];
    // Both wait while the turn is held, and this thread goes on meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(order).toEqual([]);
    first.done();
    await waiting[0];
    expect(order).toEqual(["second"]);
    second.done();
    await waiting[1];
    expect(order).toEqual(["second", "first again"]);
    first.done();
    await first.take(); // free again: taken at once
    first.done();
  });

  it("reports commits and fsyncs on /metrics with FULL, and flushes nothing itself with NORMAL", async () => {
    const dir = tempDir();
    const full = openDatabase(`sqlite:${path.join(dir, "full.db")}`, { sqliteSynchronous: "FULL", poolSize: 1 });
    const normal = openDatabase(`sqlite:${path.join(dir, "normal.db")}`, { sqliteSynchronous: "NORMAL", poolSize: 1 });
    try {
      await migrateDatabase(full);
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          full.db
            .insertInto("business")
            .values({ id: `biz_${i}`, name: `clinic ${i}`, created_at: i })
            .execute(),
        ),
      );
      const stats = full.storageStats?.();
      expect(stats?.commits).toBe(20);
      expect(stats?.flushes).toBeGreaterThanOrEqual(1);
      expect(stats?.flushes).toBeLessThanOrEqual(20);
      const text = await new Metrics(async () => {}, full.storageStats?.bind(full)).render();
      expect(text).toContain(`carehooks_sqlite_wal{kind="commits"} 20\n`);
      expect(text).toContain(`carehooks_sqlite_wal{kind="fsyncs"} ${stats?.flushes}\n`);
      expect(normal.storageStats).toBeUndefined();
      expect(await new Metrics(async () => {}).render()).not.toContain("carehooks_sqlite_wal");
    } finally {
      await full.close();
      await normal.close();
    }
  });
});
