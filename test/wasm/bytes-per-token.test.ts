/**
 * The decode bandwidth bound used by the benchmarks: bytes read per token from the config, checked against
 * the parameter counts of src/loading/parameters.ts (a second derivation) and hand-computed state sizes.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { bytesPerToken } from "../../bench/bytes_per_token.js";
import { parseConfig } from "../../src/config.js";
import { countParameters } from "../../src/loading/parameters.js";

const raw = JSON.parse(readFileSync(new URL("../fixtures/published/Qwen3-Next-80B-A3B-Instruct.config.json", import.meta.url), "utf8"));

describe("bytes per decoded token", () => {
  it.each([
    { name: "80B", over: {} },
    { name: "real slice", over: { num_hidden_layers: 4, num_experts: 64, mtp_num_hidden_layers: 0 } },
    { name: "tied, 2 experts", over: { num_hidden_layers: 8, num_experts: 2, num_experts_per_tok: 1, tie_word_embeddings: true } },
  ])("$name: weights are the active parameters plus lm_head (and one embedding row), 2 bytes each", ({ over }) => {
    const c = parseConfig({ ...raw, ...over });
    const n = countParameters(c);
    const b = bytesPerToken(c, 0);
    // lm_head is read whole; an untied embedding table adds the one row looked up (tied: it is the lm_head).
    const expected = 2 * (n.active + c.vocab_size * c.hidden_size + (c.tie_word_embeddings ? 0 : c.hidden_size));
    expect(b.weights).toBeCloseTo(expected, 0);
  });

  it("state: DeltaNet recurrent + conv state read and written, KV cache read at the context length", () => {
    const c = parseConfig(raw);
    const deltanet = 36 * 2 * 4 * (32 * 128 * 128 + (2 * 16 * 128 + 32 * 128) * 3);
    expect(bytesPerToken(c, 0).state).toBe(deltanet);
    // 12 attention layers, 2 kv heads of 256, keys and values in float32.
    expect(bytesPerToken(c, 1000).state - deltanet).toBe(12 * 2 * 4 * 1000 * 2 * 256);
  });
});
