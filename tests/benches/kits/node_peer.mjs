// The Node.js peer of the language bench: the same JavaScript kv projection
// (example-plugins/kv-js/app.js through guest-sdk/js/hume-guest.js) run
// directly in Node over the same events, the way a JS-projection event
// store runs user code: events arrive as records with UTF-8 JSON data
// bytes, in batches, and each is parsed and folded.
//
//   node node_peer.mjs EVENTS.ndjson BATCH RUNS
//
// Prints one JSON line: {"events": N, "best_events_per_s": ...,
// "best_events_per_cpu_s": ... (process CPU time, GC threads included), "runs": [...]}.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../../..");
const { plugin } = await import(path.join(root, "guest-sdk/js/hume-guest.js"));
const kv = (await import(path.join(root, "example-plugins/kv-js/app.js"))).default;

const [file, batchArg = "1000", runsArg = "5"] = process.argv.slice(2);
const batch = Number(batchArg);
const encoder = new TextEncoder();
const events = readFileSync(file, "utf8")
  .split("\n")
  .filter((l) => l)
  .map((line, i) => {
    const e = JSON.parse(line);
    return {
      position: BigInt(i + 1),
      stream: e.stream,
      revision: BigInt(i + 1),
      kind: e.kind,
      data: encoder.encode(JSON.stringify(e.data)),
      metadata: new Uint8Array(),
      timestamp: 0n,
    };
  });

const runs = [];
const cpuRuns = [];
for (let r = 0; r < Number(runsArg); r++) {
  const p = plugin(kv);
  p.initState("bench");
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < events.length; i += batch) p.handleEvents(events.slice(i, i + batch));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  if (!p.snapshot().length) throw new Error("empty snapshot");
  runs.push(events.length / seconds);
  cpuRuns.push(events.length / ((used.user + used.system) / 1e6));
}
console.log(
  JSON.stringify({
    events: events.length,
    best_events_per_s: Math.max(...runs),
    best_events_per_cpu_s: Math.max(...cpuRuns),
    runs,
  }),
);
