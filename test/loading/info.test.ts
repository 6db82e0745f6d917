import { promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, runCli } from "../helpers/cli.js";
import { fuseExperts, rewriteCheckpoint } from "./rewrite.js";

const PUBLISHED = path.join(ROOT, "test/fixtures/published/Qwen3-Next-80B-A3B-Instruct.config.json");
const MOE = path.join(ROOT, "reference/tiny-moe-mtp");

let tmp: string;
beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "info-test-"));
});
afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

/** Size of a safetensors file's data region, read straight from the file (8-byte length, header, data). */
async function dataBytes(file: string): Promise<number> {
  const b = await fsp.readFile(file);
  return b.length - 8 - Number(b.readBigUInt64LE(0));
}

describe("qwen3-next info", () => {
  it("describes the published 80B config: layers, about 80B total and 3B active, BF16 memory", async () => {
    const r = await runCli(["info", "--config", PUBLISHED]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("layers: 48 (36 gated DeltaNet, 12 gated attention at 3, 7, 11, 15, 19, 23, 27, 31, 35, 39, 43, 47)");
    expect(r.stdout).toContain("mlp: 48 MoE layers (0-47), 0 dense SwiGLU");
    expect(r.stdout).toContain("experts: 512 routed, top-10");
    expect(r.stdout).toContain("rotary dims 64 of 256");
    expect(r.stdout).toContain("mtp: 1 layer(s)");
    expect(r.stdout).toMatch(/parameters: 81\.\d\dB total \(79\.\d\dB without the MTP head\), 3\.\d\dB active per token/);
    expect(r.stdout).toMatch(/weights: 151 GiB \(BF16/);
    const json = JSON.parse((await runCli(["info", "--config", PUBLISHED, "--json", "--context", "262144"])).stdout);
    expect(json.weights.bytes).toBe(2 * json.parameters.total);
    // 12 attention layers + 1 MTP layer, K and V, 2 kv heads of 256, float32
    expect(json.state.float32.kvCache).toBe(13 * 2 * 262144 * 2 * 256 * 4);
    expect(json.state.context).toBe(262144);
  });

  it("reads a checkpoint's headers only, single file or sharded with fused experts alike", async () => {
    const single = JSON.parse((await runCli(["info", "--model", MOE, "--json"])).stdout);
    expect(single.weights.bytes).toBe(await dataBytes(path.join(MOE, "model.safetensors")));
    expect(single.weights.byDtype).toEqual({ BF16: single.weights.bytes });
    expect(single.weights.from).toBe("safetensors headers");
    expect(single.architecture[0]).toBe("family: Qwen3-Next (qwen3_next)");
    expect(single.architecture[1]).toBe("layers: 4 (3 gated DeltaNet, 1 gated attention at 3)");
    const dir = path.join(tmp, "sharded");
    await rewriteCheckpoint(MOE, dir, { shards: 3, tensors: fuseExperts });
    const sharded = await runCli(["info", "--model", dir]);
    expect(sharded.code).toBe(0);
    expect(sharded.stdout).toContain("config.json + 3 safetensors files");
    expect(sharded.stdout).toContain("from the safetensors headers");
    expect(sharded.stdout).toContain(`weights: ${(single.weights.bytes / 1024).toFixed(0)} KiB (BF16`);
  });

  it("bad use: neither or both sources exit 2; a missing folder exits 1 with one line", async () => {
    const none = await runCli(["info"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("give exactly one of --model DIR or --config FILE");
    const both = await runCli(["info", "--model", MOE, "--config", PUBLISHED]);
    expect(both.code).toBe(2);
    const missing = await runCli(["info", "--model", path.join(tmp, "nowhere")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toMatch(/^qwen3-next: .*nowhere: no such checkpoint folder$/);
    const badContext = await runCli(["info", "--config", PUBLISHED, "--context", "0"]);
    expect(badContext.code).toBe(2);
  });
});
