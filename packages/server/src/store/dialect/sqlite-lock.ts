/**
 * `serve` holds its SQLite database alone. The lock is the kernel's: an
 * exclusive SQLite transaction held open on a small file beside the database
 * (`<database>.lock`) for the life of the process, which the operating system
 * drops when the process dies however it dies (kill -9, out of memory, power
 * loss), on any host that mounts the directory. A second `serve` on the same
 * database refuses to start, naming the holder from a note the holder leaves
 * beside the lock (`<database>.lock.json`: pid, host, start time). Holding the
 * file alone is what lets a starting `serve` return every lease it finds: they
 * all belong to a dead process.
 */
import fs from "node:fs";
import os from "node:os";
import BetterSqlite3 from "better-sqlite3";

export class DatabaseLockedError extends Error {
  override name = "DatabaseLockedError";
}

export interface DatabaseLock {
  readonly file: string;
  release(): void;
}

interface Holder {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
}

function holderOf(noteFile: string): string {
  try {
    const holder = JSON.parse(fs.readFileSync(noteFile, "utf8")) as Holder;
    return `pid ${holder.pid} on ${holder.host}, since ${holder.since}`;
  } catch {
    return "its note is missing";
  }
}

/** Takes `<database>.lock`, or throws DatabaseLockedError naming the process that holds it. */
export function lockDatabase(databaseFile: string): DatabaseLock {
  const file = `${databaseFile}.lock`;
  const note = `${file}.json`;
  // No busy wait: a held lock is an answer, not something to wait out.
  const lock = new BetterSqlite3(file, { timeout: 0 });
  try {
    lock.pragma("locking_mode = EXCLUSIVE");
    lock.exec("BEGIN EXCLUSIVE");
  } catch (error) {
    lock.close();
    if ((error as { code?: string }).code !== "SQLITE_BUSY") throw error;
    throw new DatabaseLockedError(
      `${databaseFile} is in use by another carehooks serve (${holderOf(note)}); stop it first`,
    );
  }
  const holder: Holder = { pid: process.pid, host: os.hostname(), since: new Date().toISOString() };
  fs.writeFileSync(note, JSON.stringify(holder), { mode: 0o600 });
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    // The note first: once the lock is let go, the next holder writes its own.
    fs.rmSync(note, { force: true });
    lock.close();
  };
  process.once("exit", release);
  return {
    file,
    release: () => {
      process.removeListener("exit", release);
      release();
    },
  };
}
