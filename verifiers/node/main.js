// node main.js --vectors FILE: check every test vector (canonical bytes, accept or reject).
// node main.js < commands.jsonl: verify one command per line with GUARDIAN_SIGNING_KEY.
// Exit 0 when all is as expected, 1 otherwise, 2 on a usage error.
import { readFileSync } from "node:fs";
import { canonical, verify } from "./verify.js";

function checkVectors(path) {
  const { vectors } = JSON.parse(readFileSync(path, "utf8"));
  let failed = 0;
  for (const vector of vectors) {
    const got = canonical(vector.command).toString("utf8");
    const accepted = verify(vector.command, vector.key);
    let problem = null;
    if (got !== vector.canonical) {
      problem = `canonical form differs\n  got  ${got}\n  want ${vector.canonical}`;
    } else if (accepted !== (vector.expect === "accept")) {
      problem = `expected ${vector.expect}, got ${accepted ? "accept" : "reject"}`;
    }
    console.log(problem ? `FAIL ${vector.name}: ${problem}` : `ok   ${vector.name}`);
    if (problem) failed += 1;
  }
  return failed ? 1 : 0;
}

function checkStdin() {
  const key = process.env.GUARDIAN_SIGNING_KEY;
  if (!key) {
    console.error("GUARDIAN_SIGNING_KEY is not set");
    return 2;
  }
  let bad = 0;
  const lines = readFileSync(0, "utf8").split("\n");
  lines.forEach((line, index) => {
    if (!line.trim()) return;
    let command;
    try {
      command = JSON.parse(line);
    } catch {
      console.log(`BAD line ${index + 1}: not JSON`);
      bad += 1;
      return;
    }
    const ok = verify(command, key);
    console.log(`${ok ? "ok " : "BAD"} ${command.command_id ?? `line ${index + 1}`}`);
    if (!ok) bad += 1;
  });
  return bad ? 1 : 0;
}

process.exitCode = process.argv[2] === "--vectors" ? checkVectors(process.argv[3]) : checkStdin();
