// The Node.js peer of `hume replay` (the replay bench): the same JavaScript
// kv projection (example-plugins/kv-js/app.js through
// guest-sdk/js/hume-guest.js) folding an NDJSON events file in plain Node,
// as a whole process, the way `hume replay` does: read the file, parse
// each line into an event record (UTF-8 JSON data bytes, as the kit takes
// them), fold in batches, snapshot the state.
//
//   node node_replay.mjs EVENTS.ndjson [BATCH]
//
// Prints one JSON line: {"events": N, "snapshot_bytes": N}.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../../..");
const { plugin } = await import(path.join(root, "guest-sdk/js/hume-guest.js"));
const kv = (await import(path.join(root, "example-plugins/kv-js/app.js"))).default;

const [file, batchArg = "1000"] = process.argv.slice(2);
const size = Number(batchArg);
const encoder = new TextEncoder();
const empty = new Uint8Array();
const p = plugin(kv);
p.initState("replay");

let count = 0;
let batch = [];
for (const line of readFileSync(file, "utf8").split("\n")) {
  if (!line) continue;
  const e = JSON.parse(line);
  count++;
  batch.push({
    position: BigInt(e.position ?? count),
    stream: e.stream ?? "replay",
    revision: BigInt(e.revision ?? count),
    kind: e.kind,
    data: encoder.encode(JSON.stringify(e.data)),
    metadata: empty,
    timestamp: BigInt(e.timestamp ?? 0),
  });
  if (batch.length === size) {
    p.handleEvents(batch);
    batch = [];
  }
}
if (batch.length) p.handleEvents(batch);
const snapshot = p.snapshot();
console.log(JSON.stringify({ events: count, snapshot_bytes: snapshot.length }));
