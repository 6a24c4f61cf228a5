// Resolves the server's own copies of undici and pg (dependencies of packages/server),
// so the baseline uses exactly the HTTP client the delivery engine uses.
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const SERVER_DIR = path.join(ROOT, "packages/server");
export const BIN = path.join(SERVER_DIR, "bin/carehooks.js");

const require = createRequire(path.join(SERVER_DIR, "package.json"));
export const undici = require("undici");
export const pg = require("pg");
export const undiciVersion = require("undici/package.json").version;
/** The SQLite driver carehooks uses, for the reference loop (peers/sqlite-loop.mjs). */
export const BetterSqlite3 = require("better-sqlite3");
export const betterSqliteVersion = require("better-sqlite3/package.json").version;
export const pgVersion = require("pg/package.json").version;
