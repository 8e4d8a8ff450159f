// Validate AsyncAPI documents with the official parser (@asyncapi/parser).
// Usage: node validate.mjs FILE...
// Prints every diagnostic as one JSON line {file, severity, code, message, path}
// and a summary line per file; exits 1 when any file has an error diagnostic
// (severity 0) or does not parse, 2 on bad usage.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node validate.mjs FILE...");
  process.exit(2);
}
const parser = new Parser();
const names = ["error", "warning", "information", "hint"];
let failed = 0;
for (const file of files) {
  const { document, diagnostics } = await parser.parse(readFileSync(file, "utf8"), {
    source: file,
  });
  let errors = 0;
  for (const d of diagnostics) {
    if (d.severity === 0) errors += 1;
    console.log(
      JSON.stringify({
        file,
        severity: names[d.severity] ?? String(d.severity),
        code: d.code,
        message: d.message,
        path: d.path.join("/"),
      }),
    );
  }
  if (document === undefined && errors === 0) errors = 1;
  if (errors > 0) failed += 1;
  console.log(
    `${file}: asyncapi ${document?.version() ?? "?"}: ${errors} error(s), ${diagnostics.length} diagnostic(s)`,
  );
}
process.exit(failed === 0 ? 0 : 1);
