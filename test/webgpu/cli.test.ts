/**
 * `--backend webgpu` on the commands: `generate` on the demo checkpoint samples exactly the tokens the WASM
 * backend samples with the same seed, and a float64 request is refused in one line (exit code 1).
 */
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { testGpu } from "./gpu.js";

const { gpu, reason } = await testGpu();
afterAll(() => gpu?.close());

const tokens = async (backend: string): Promise<number[]> => {
  const r = await runCli(["generate", "--backend", backend, "--temperature", "1", "--seed", "7", "--max-tokens", "10", "--json", "Tell me a story"]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { tokens: number[] }).tokens;
};

describe.skipIf(!gpu)(`--backend webgpu${reason ? ` (skipped: ${reason})` : ""}`, () => {
  it("generate samples the WASM backend's tokens for the same seed", async () => {
    const [webgpu, wasm] = [await tokens("webgpu"), await tokens("wasm")];
    expect(webgpu).toHaveLength(10);
    expect(webgpu).toEqual(wasm);
  });

  it("refuses float64 in one line", async () => {
    const r = await runCli(["generate", "--backend", "webgpu", "--precision", "f64", "--max-tokens", "2", "hi"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^qwen3-next: the webgpu backend computes in float32, got precision "f64"$/m);
  });
});
