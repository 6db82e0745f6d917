import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config.js";
import { countParameters, sequenceStateBytes, weightBytes } from "../../src/loading/parameters.js";
import { ROOT } from "../helpers/cli.js";

const published = parseConfig(
  JSON.parse(readFileSync(path.join(ROOT, "test/fixtures/published/Qwen3-Next-80B-A3B-Instruct.config.json"), "utf8")),
);

/*
 * Qwen3-Next-80B-A3B, counted by hand from the published config (hidden 2048, 48 layers = 36 DeltaNet + 12
 * attention, 512 experts of width 512, top-10, shared expert 512, vocab 151936, one MTP layer).
 * Qwen's model card: "80B total parameters and 3B activated".
 */
const H = 2048;
const V = 151936;
const norms = 2 * H; // input_layernorm + post_attention_layernorm
const deltaNet =
  (2 * 16 * 128 + 2 * 32 * 128) * H + // in_proj_qkvz: q, k (16 key heads of 128), v, z (32 value heads of 128)
  2 * 32 * H + // in_proj_ba: beta and alpha per value head
  (2 * 16 * 128 + 32 * 128) * 4 + // conv1d over q, k, v channels, kernel 4
  32 + 32 + // dt_bias, A_log
  128 + // gated RMSNorm over dv
  H * 32 * 128; // out_proj
const attention =
  2 * 16 * 256 * H + // q_proj: query and output gate, 16 heads of 256
  2 * (2 * 256 * H) + // k_proj, v_proj: 2 kv heads
  H * 16 * 256 + // o_proj
  2 * 256; // q_norm, k_norm
const expert = 3 * 512 * H; // gate, up [512, H]; down [H, 512]
const router = 512 * H;
const shared = 3 * 512 * H + H; // shared expert + its [1, H] sigmoid gate
const moeAll = router + 512 * expert + shared;
const moeActive = router + 10 * expert + shared;
const embeddings = 2 * V * H; // embed_tokens + untied lm_head
const mainTotal = 36 * (norms + deltaNet + moeAll) + 12 * (norms + attention + moeAll) + H /* model.norm */ + embeddings;
const mtpTotal = 2 * H * H /* fc */ + 2 * H /* pre-fc norms */ + norms + attention + moeAll + H; /* mtp.norm */
const active = 36 * (norms + deltaNet + moeActive) + 12 * (norms + attention + moeActive) + H;

describe("parameter counts of the published 80B config", () => {
  it("matches the hand count exactly", () => {
    const p = countParameters(published);
    expect(p.total).toBe(mainTotal + mtpTotal);
    expect(p.mtp).toBe(mtpTotal);
    expect(p.embeddings).toBe(embeddings);
    expect(p.routedExperts).toBe(48 * 512 * expert);
    expect(p.active).toBe(active);
    expect(p.activeWithEmbeddings).toBe(active + embeddings);
  });

  it("is about 80B total and 3B active, as Qwen states", () => {
    const p = countParameters(published);
    expect(p.total).toBeGreaterThanOrEqual(79e9);
    expect(p.total).toBeLessThanOrEqual(82e9);
    expect(p.total - p.mtp).toBeGreaterThanOrEqual(79e9);
    expect(p.active).toBeGreaterThanOrEqual(2.8e9);
    expect(p.active).toBeLessThanOrEqual(3.3e9);
  });

  it("memory: BF16 weights are 2 bytes per parameter; state per sequence from first principles", () => {
    expect(weightBytes(published, "BF16")).toBe(2 * (mainTotal + mtpTotal));
    expect(weightBytes(published, "F32")).toBe(4 * (mainTotal + mtpTotal));
    const s = sequenceStateBytes(published, 4096, 4);
    expect(s.kvCache).toBe((12 + 1) * 2 * 4096 * 2 * 256 * 4); // 12 attention layers + the MTP layer
    expect(s.deltaState).toBe(36 * 32 * 128 * 128 * 4);
    expect(s.convState).toBe(36 * 8192 * 3 * 4);
    expect(s.total).toBe(s.kvCache + s.deltaState + s.convState);
  });
});

describe("parameter counts of other configs", () => {
  it("a dense, tied model without MTP has no routed experts and active == total minus embeddings", () => {
    const base = JSON.parse(readFileSync(path.join(ROOT, "reference/tiny-dense-yarn-long/config.json"), "utf8"));
    const c = parseConfig({ ...base, num_experts: 0 });
    const p = countParameters(c);
    expect(p.routedExperts).toBe(0);
    expect(p.mtp).toBe(0);
    expect(p.embeddings).toBe(300 * 48); // tied: the table once
    expect(p.active).toBe(p.total - p.embeddings);
  });

  it("active grows with top-k by exactly one expert per MoE layer", () => {
    const base = JSON.parse(readFileSync(path.join(ROOT, "reference/tiny-dense-yarn-long/config.json"), "utf8"));
    const a = countParameters(parseConfig(base));
    const b = countParameters(parseConfig({ ...base, num_experts_per_tok: 4 }));
    const moeLayers = 3; // layers 1, 3, 7 (step 2; layer 5 is in mlp_only_layers)
    expect(b.active - a.active).toBe(moeLayers * 3 * 24 * 48);
    expect(b.total).toBe(a.total);
  });
});
