import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/load.js";
import { generateMasterKey } from "../src/domain/key-box.js";
import { openMigratedDatabase, resolveSecrets } from "../src/runtime.js";
import { tempDir } from "./support/databases.js";

const modeOf = (file: string) => fs.statSync(file).mode & 0o777;

describe("the embedded data directory", () => {
  let previousUmask: number;
  const roots: string[] = [];
  // The usual umask, under which files came out readable by every local user.
  beforeAll(() => {
    previousUmask = process.umask(0o022);
  });
  afterAll(() => {
    process.umask(previousUmask);
    for (const root of roots) fs.rmSync(root, { recursive: true, force: true });
  });

  function freshDataDir(): string {
    const root = tempDir();
    roots.push(root);
    return path.join(root, "data");
  }

  it("is created 0700 with the database, its -wal and -shm, and the secrets 0600", async () => {
    const dataDir = freshDataDir();
    const config = loadConfig({ CAREHOOKS_DATA_DIR: dataDir });
    resolveSecrets(config);
    const adapter = await openMigratedDatabase(config);
    try {
      expect(modeOf(dataDir)).toBe(0o700);
      for (const name of ["carehooks.db", "carehooks.db-wal", "carehooks.db-shm", "master.key", "jwt.secret"]) {
        expect(modeOf(path.join(dataDir, name)), name).toBe(0o600);
      }
    } finally {
      await adapter.close();
    }
  });

  it("takes other users' access away from a database file made before", async () => {
    const dataDir = freshDataDir();
    fs.mkdirSync(dataDir);
    const file = path.join(dataDir, "carehooks.db");
    fs.writeFileSync(file, "", { mode: 0o644 });
    const adapter = await openMigratedDatabase(loadConfig({ CAREHOOKS_DATA_DIR: dataDir }));
    try {
      expect(modeOf(file)).toBe(0o600);
      expect(modeOf(`${file}-wal`)).toBe(0o600);
    } finally {
      await adapter.close();
    }
  });

  it("refuses a master.key or jwt.secret other users can read", () => {
    const dataDir = freshDataDir();
    fs.mkdirSync(dataDir, { mode: 0o700 });
    fs.writeFileSync(path.join(dataDir, "master.key"), `${generateMasterKey()}\n`, { mode: 0o644 });
    const config = loadConfig({ CAREHOOKS_DATA_DIR: dataDir });
    expect(() => resolveSecrets(config)).toThrow(/master\.key is readable by other users \(mode 0644\); run chmod 600/);
    fs.chmodSync(path.join(dataDir, "master.key"), 0o600);
    fs.writeFileSync(path.join(dataDir, "jwt.secret"), `${"s".repeat(40)}\n`, { mode: 0o640 });
    expect(() => resolveSecrets(config)).toThrow(/jwt\.secret is readable by other users/);
    fs.chmodSync(path.join(dataDir, "jwt.secret"), 0o600);
    expect(resolveSecrets(config).jwtSecret).toBe("s".repeat(40));
  });

  it("refuses a jwt.secret file shorter than the environment's minimum, as it refuses the variable", () => {
    const dataDir = freshDataDir();
    fs.mkdirSync(dataDir, { mode: 0o700 });
    fs.writeFileSync(path.join(dataDir, "jwt.secret"), "short\n", { mode: 0o600 });
    expect(() => loadConfig({ CAREHOOKS_DATA_DIR: dataDir, CAREHOOKS_JWT_SECRET: "short" })).toThrow(
      /at least 32 characters/,
    );
    expect(() => resolveSecrets(loadConfig({ CAREHOOKS_DATA_DIR: dataDir }))).toThrow(
      /jwt\.secret must hold at least 32 characters/,
    );
    fs.writeFileSync(path.join(dataDir, "master.key"), "not-hex\n", { mode: 0o600 });
    fs.writeFileSync(path.join(dataDir, "jwt.secret"), `${"s".repeat(40)}\n`, { mode: 0o600 });
    expect(() => resolveSecrets(loadConfig({ CAREHOOKS_DATA_DIR: dataDir }))).toThrow(/master\.key must hold 64 hex/);
  });
});
