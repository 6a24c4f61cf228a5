import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { threadError } from "../src/thread-error.js";
import { tempDir } from "./support/databases.js";

describe("a worker thread's uncaught error", () => {
  it("keeps its code and gains a message when Node copies it over as a plain object", async () => {
    const file = path.join(tempDir(), "not-a-database.db");
    writeFileSync(file, Buffer.alloc(8192, 0x5a));
    const worker = new Worker(
      `const Database = require(${JSON.stringify(createRequire(import.meta.url).resolve("better-sqlite3"))});
       new Database(${JSON.stringify(file)}).pragma("synchronous = NORMAL");`,
      { eval: true },
    );
    const [raw] = await once(worker, "error");
    // What Node hands over: better-sqlite3's SqliteError as its enumerable properties alone.
    expect(raw).not.toBeInstanceOf(Error);
    const error = threadError(raw, "the test thread");
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toBe("the test thread failed: SQLITE_NOTADB");
    expect((error as Error & { code?: string }).code).toBe("SQLITE_NOTADB");
  });

  it("is kept as it is when it arrives as an Error with a message", () => {
    const original = new TypeError("boom");
    expect(threadError(original, "the test thread")).toBe(original);
  });

  it("says what it was when it has neither a message nor a code, and keeps it as the cause", () => {
    const odd = { errno: -5, syscall: "read" };
    const error = threadError(odd, "the test thread");
    expect(error.message).toBe("the test thread failed: { errno: -5, syscall: 'read' }");
    expect(error.cause).toBe(odd);
    expect(threadError(new Error(""), "the test thread").message).toMatch(/^the test thread failed: /);
  });
});
