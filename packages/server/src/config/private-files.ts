/**
 * The data directory holds clinical records, the audit log and the keys that
 * open signing keys: nobody but the account running carehooks may read it.
 */
import fs from "node:fs";
import { ConfigError } from "./load.js";

const PRIVATE_DIR_MODE = 0o700;
const PRIVATE_FILE_MODE = 0o600;
/** Group and other bits: any of them set lets another local account in. */
const SHARED_BITS = 0o077;

/** Creates a directory (and its missing parents) that only its owner can enter. */
export function createPrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/**
 * Creates an empty file mode 0600 unless it exists, so SQLite opens a private
 * file instead of one made under the umask; its -wal and -shm copy that mode.
 */
export function createPrivateFile(file: string): void {
  try {
    fs.closeSync(
      fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, PRIVATE_FILE_MODE),
    );
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
}

/** Takes group and other access away from files that exist (a database made before this check, its -wal and -shm). */
export function tightenFiles(files: readonly string[]): void {
  for (const file of files) {
    try {
      const { mode } = fs.statSync(file);
      if ((mode & SHARED_BITS) !== 0) fs.chmodSync(file, mode & ~SHARED_BITS & 0o777);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
}

/**
 * Refuses a secret file other accounts can read rather than fixing it quietly:
 * the operator has to learn that the secret may already have been copied.
 */
export function checkSecretFileMode(file: string, variable: string): void {
  const mode = fs.statSync(file).mode & 0o777;
  if ((mode & SHARED_BITS) !== 0) {
    throw new ConfigError(
      `${file} is readable by other users (mode ${mode.toString(8).padStart(4, "0")}); run chmod 600 ${file} (or set ${variable} instead)`,
    );
  }
}
