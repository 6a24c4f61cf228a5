// Reads vitest's JSON report and prints the closing line CI reads: "N passed, N failed".
import fs from "node:fs";

const file = process.argv[2];
let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const report = JSON.parse(fs.readFileSync(file, "utf8"));
  passed = report.numPassedTests ?? 0;
  failed =
    (report.numFailedTests ?? 0) +
    (report.testResults ?? []).filter((r) => r.status === "failed" && r.assertionResults?.length === 0).length;
  skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
} catch (error) {
  console.error(`no test report at ${file}: ${error.message}`);
  failed = 1;
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
