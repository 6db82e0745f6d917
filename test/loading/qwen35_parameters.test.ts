/**
 * Parameter counts of the Qwen3.5 configs in test/fixtures/published (see its README for where they come from),
 * counted by hand here from the published settings, and `info` on them.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config.js";
import { countParameters } from "../../src/loading/parameters.js";
import { ROOT, runCli } from "../helpers/cli.js";

const file = (name: string) => path.join(ROOT, `test/fixtures/published/${name}.config.json`);
const load = (name: string) => parseConfig(JSON.parse(readFileSync(file(name), "utf8")));

/** One gated DeltaNet layer: split projections qkv, z, b, a; conv; dt_bias, A_log; norm; out_proj. */
function deltaNet(H: number, nk: number, nv: number, d: number): number {
  const conv = 2 * nk * d + nv * d;
  return conv * H + nv * d * H + 2 * nv * H + conv * 4 + 2 * nv + d + H * nv * d;
}
/** One gated attention layer: q (with gate), k, v, o; q_norm, k_norm. */
function attention(H: number, heads: number, kv: number, hd: number): number {
  return 2 * heads * hd * H + 2 * kv * hd * H + H * heads * hd + 2 * hd;
}

describe("Qwen3.5-0.8B (dense, tied, one MTP layer)", () => {
  const H = 1024;
  const V = 248320;
  const mlp = 3 * 3584 * H;
  const dn = deltaNet(H, 16, 16, 128);
  const attn = attention(H, 8, 2, 256);
  const main = 18 * (2 * H + dn + mlp) + 6 * (2 * H + attn + mlp) + H + V * H;
  const mtp = 2 * H * H + 2 * H + (2 * H + attn + mlp) + H;

  it("matches the hand count: 0.75B text model + a 20M MTP head", () => {
    const p = countParameters(load("Qwen3.5-0.8B"));
    expect(p.total).toBe(main + mtp);
    expect(p.mtp).toBe(mtp);
    expect(p.embeddings).toBe(V * H);
    expect(p.routedExperts).toBe(0);
    expect(p.active).toBe(main - V * H);
    expect(p.total - p.mtp).toBeGreaterThan(0.74e9);
    expect(p.total - p.mtp).toBeLessThan(0.76e9);
  });

  it("info describes it: text only, dense, split DeltaNet projections", async () => {
    const r = await runCli(["info", "--config", file("Qwen3.5-0.8B")]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("family: Qwen3.5 (qwen3_5), text only (image and video input are not supported)");
    expect(r.stdout).toContain("layers: 24 (18 gated DeltaNet, 6 gated attention at 3, 7, 11, 15, 19, 23)");
    expect(r.stdout).toContain("mlp: 0 MoE layers, 24 dense SwiGLU (0-23, intermediate 3584)");
    expect(r.stdout).toContain("experts: none");
    expect(r.stdout).toContain("hidden: 1024, vocab: 248320, lm_head: tied to the embedding");
    expect(r.stdout).toContain("16 key heads of 128, 16 value heads of 128, conv kernel 4, split input projections (in_proj_qkv, in_proj_z, in_proj_b, in_proj_a)");
    expect(r.stdout).toMatch(/parameters: 772\.85M total \(752\.39M without the MTP head\)/);
  });
});

describe("Qwen3.5-35B-A3B (MoE, 256 experts top-8, shared expert, untied, one MTP layer)", () => {
  const H = 2048;
  const V = 248320;
  const expert = 3 * 512 * H;
  const moe = (k: number) => 256 * H /* router */ + k * expert + 3 * 512 * H + H; /* shared expert and its gate */
  const dn = deltaNet(H, 16, 32, 128);
  const attn = attention(H, 16, 2, 256);
  const layers = (k: number) => 30 * (2 * H + dn + moe(k)) + 10 * (2 * H + attn + moe(k));

  it("matches the hand count: about 35B total, about 3B active", () => {
    const p = countParameters(load("Qwen3.5-35B-A3B"));
    const mtp = 2 * H * H + 2 * H + (2 * H + attn + moe(256)) + H;
    expect(p.total).toBe(layers(256) + H + 2 * V * H + mtp);
    expect(p.mtp).toBe(mtp);
    expect(p.routedExperts).toBe(40 * 256 * expert);
    expect(p.active).toBe(layers(8) + H);
    // "35B-A3B": 34.7B without the MTP head; 3B active lies between the count without (2.4B) and with (3.5B) the
    // embedding and lm_head.
    expect(Math.abs(p.total - p.mtp - 35e9)).toBeLessThan(0.5e9);
    expect(p.active).toBeLessThan(3e9);
    expect(p.activeWithEmbeddings).toBeGreaterThan(3e9);
  });
});
