/**
 * The per-token cost of constrained decoding: for each generated token the scheduler fetches XGrammar's
 * next-token bitmask, applies it to the logits (disallowed ids to -inf) and advances the matcher.
 * Measured over real token sequences of grammar-valid outputs (a JSON object for a json_schema, a Qwen tool
 * call for a named tool_choice), against the Qwen3 vocabulary (151,669 ids), next to one decode step of the
 * demo checkpoint (batch 1) as the yardstick. Writes bench/grammar-results.json.
 *
 *   node --import tsx bench/grammar_mask.ts [--rounds 20]
 */
import { writeFileSync } from "node:fs";
import { Grammars } from "../src/server/grammar/grammars.js";
import { applyMask } from "../src/generate/sampler.js";
import type { ChatBody } from "../src/server/requests.js";
import { QwenTokenizer } from "../src/tokenizer/tokenizer.js";
import { ensureDemoCheckpoint } from "../src/init/demo.js";
import { openSession } from "../src/cli/generation_session.js";
import { machineFacts } from "./machine.js";

const i = process.argv.indexOf("--rounds");
const rounds = i >= 0 ? Number(process.argv[i + 1]) : 20;
if (!Number.isInteger(rounds) || rounds < 1) throw new Error("--rounds expects an integer >= 1");

const tokenizer = await QwenTokenizer.load();
const V = 151936;
const grammars = new Grammars(tokenizer, V);
const person = {
  type: "object",
  properties: { name: { type: "string" }, age: { type: "integer" }, tags: { type: "array", items: { type: "string" } } },
  required: ["name", "age", "tags"],
  additionalProperties: false,
};
const tools = [
  { type: "function" as const, function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" }, unit: { enum: ["c", "f"] } }, required: ["city", "unit"] } } },
];
const cases = [
  {
    name: "json_schema",
    compile: () => grammars.forFormat({ type: "json_schema", json_schema: { name: "person", schema: person, strict: true } }),
    text: '{"name": "Ada Lovelace", "age": 36, "tags": ["mathematician", "writer", "analyst"]}',
  },
  {
    name: "tool_choice (named)",
    compile: () => grammars.forChat({ model: "m", messages: [], tools, tool_choice: { type: "function", function: { name: "get_weather" } } } as ChatBody, false),
    text: '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n</tool_call>',
  },
];

const logits = new Float32Array(tokenizer.vocabSize).map((_, k) => Math.sin(k));
const rows = [];
for (const c of cases) {
  const t0 = performance.now();
  const factory = (await c.compile())!;
  const compileMs = performance.now() - t0;
  const ids = [...tokenizer.encode(c.text), tokenizer.eosIds[0]];
  let maskMs = 0;
  let applyMs = 0;
  let acceptMs = 0;
  for (let r = 0; r < rounds; r++) {
    const g = factory();
    for (const id of ids) {
      let t = performance.now();
      const mask = await g.nextMask();
      maskMs += performance.now() - t;
      const z = logits.slice();
      t = performance.now();
      applyMask(z, mask);
      applyMs += performance.now() - t;
      t = performance.now();
      if (!g.accept(id)) throw new Error(`${c.name}: the grammar rejected token ${id}`);
      acceptMs += performance.now() - t;
    }
    g.free();
  }
  const n = rounds * ids.length;
  rows.push({ case: c.name, tokens: ids.length, compileMs, maskUs: (maskMs / n) * 1000, applyUs: (applyMs / n) * 1000, acceptUs: (acceptMs / n) * 1000, totalUs: ((maskMs + applyMs + acceptMs) / n) * 1000 });
}

// Yardstick: one batch-1 decode step of the demo checkpoint (WASM kernels).
await ensureDemoCheckpoint();
const session = await openSession({ backend: "wasm", precision: "f32", accumulate: "f64" } as never);
const state = session.model.newState();
await session.model.forward([1, 2, 3], state, { lastOnly: true });
const steps = 30;
const t0 = performance.now();
for (let s = 0; s < steps; s++) await session.model.decodeBatch([5 + s], [state]);
const stepUs = ((performance.now() - t0) / steps) * 1000;
state.free();
await (session.model.kernels as { close?: () => unknown }).close?.();

console.log(`demo decode step (batch 1): ${stepUs.toFixed(0)} us`);
console.log("| grammar | tokens | compile | mask | apply | accept | per token | vs a demo step |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(
    `| ${r.case} | ${r.tokens} | ${r.compileMs.toFixed(0)} ms | ${r.maskUs.toFixed(0)} us | ${r.applyUs.toFixed(0)} us | ${r.acceptUs.toFixed(1)} us | ${r.totalUs.toFixed(0)} us | ${((100 * r.totalUs) / stepUs).toFixed(0)}% |`,
  );
}
writeFileSync(new URL("./grammar-results.json", import.meta.url), `${JSON.stringify({ date: new Date().toISOString(), machine: machineFacts(), rounds, demoStepUs: stepUs, rows }, null, 2)}\n`);
