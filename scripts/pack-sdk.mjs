#!/usr/bin/env node
// `npm run pack:sdk`: builds @carehooks/sdk and packs it into dist/packages/ as a tarball that
// `npm install <path to the .tgz>` installs in any project, until the package is published.
// `--no-build` packs what the last build made (the test suite, which builds first, uses it).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const out = path.join(root, "dist", "packages");
fs.mkdirSync(out, { recursive: true });
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
if (!process.argv.includes("--no-build"))
  execFileSync(npm, ["run", "build", "--silent"], { cwd: root, stdio: "inherit" });
const packed = JSON.parse(
  execFileSync(npm, ["pack", "--json", "--pack-destination", out], {
    cwd: path.join(root, "packages", "sdk"),
  }).toString(),
);
const file = path.join(out, packed[0].filename);
process.stdout.write(`${file}\n`);
