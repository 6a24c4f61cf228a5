/**
 * `serve` holds its SQLite database alone: a lock file beside it names the
 * process (pid, host, and the process's start time where /proc tells it, so
 * a reused pid is not mistaken for the holder). A second `serve` on the same
 * database refuses to start; a lock left by a process that is gone (kill -9,
 * power loss) is taken over. Holding the file alone is what lets a starting
 * `serve` return every lease it finds: they all belong to a dead process.
 */
import fs from "node:fs";
import os from "node:os";

interface Holder {
  readonly pid: number;
  readonly host: string;
  /** Clock ticks since boot when the process started (Linux), so a reused pid is told apart. */
  readonly startedAt: string | null;
  readonly since: string;
}

export class DatabaseLockedError extends Error {
  override name = "DatabaseLockedError";
}

/** The start time of a process in clock ticks since boot, from /proc; null where there is no /proc. */
function startTimeOf(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start with the state, field 3; the start time is field 22.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

function isAlive(holder: Holder): boolean {
  if (holder.host !== os.hostname()) return true; // another machine's process: cannot tell, so assume it runs
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  return holder.startedAt === null || startTimeOf(holder.pid) === holder.startedAt;
}

function readHolder(lockFile: string): Holder | undefined {
  try {
    return JSON.parse(fs.readFileSync(lockFile, "utf8")) as Holder;
  } catch {
    return undefined; // gone meanwhile, or half-written by a process that died writing it
  }
}

export interface DatabaseLock {
  readonly file: string;
  release(): void;
}

/** Takes `<database>.lock`, or throws DatabaseLockedError naming the live process that holds it. */
export function lockDatabase(databaseFile: string): DatabaseLock {
  const file = `${databaseFile}.lock`;
  const me: Holder = {
    pid: process.pid,
    host: os.hostname(),
    startedAt: startTimeOf(process.pid),
    since: new Date().toISOString(),
  };
  const text = JSON.stringify(me);
  for (let tries = 0; ; tries++) {
    try {
      fs.writeFileSync(file, text, { flag: "wx", mode: 0o600 });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST" || tries >= 3) throw error;
    }
    const holder = readHolder(file);
    if (holder && isAlive(holder)) {
      throw new DatabaseLockedError(
        `${databaseFile} is in use by another carehooks serve (pid ${holder.pid} on ${holder.host}, since ${holder.since}); ` +
          `stop it first, or delete ${file} if that process is gone`,
      );
    }
    fs.rmSync(file, { force: true });
  }
  const release = () => {
    if (fs.existsSync(file) && fs.readFileSync(file, "utf8") === text) fs.rmSync(file, { force: true });
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
