/** A re-laid-out checkpoint (fused experts, sharded) must give the reference outputs through the whole model. */
import { promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { readSafetensors } from "../../src/io/safetensors.js";
import { ROOT, runCli } from "../helpers/cli.js";
import { fuseExperts, rewriteCheckpoint } from "./rewrite.js";

const FIXTURE = path.join(ROOT, "reference/tiny-moe-mtp");
let tmp: string;
beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "layouts-e2e-"));
});
afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

it("tiny-moe-mtp with fused experts in 3 shards: trace (f64, prefill + decode) then compare within 1e-9", async () => {
  const dir = path.join(tmp, "fused");
  await rewriteCheckpoint(FIXTURE, dir, { tensors: fuseExperts, shards: 3 });
  const expected = path.join(FIXTURE, "expected.safetensors");
  const { tensors, metadata } = await readSafetensors(expected);
  const ids = [...(tensors.get("input_ids")!.data as BigInt64Array)].join(",");
  const out = path.join(tmp, "trace.safetensors");
  const trace = await runCli(["trace", "--model", dir, "--tokens", ids, "--out", out, "--precision", "f64", "--decode-from", metadata.n_prefill]);
  expect(trace.code, trace.stderr).toBe(0);
  const cmp = await runCli(["compare", out, expected, "--atol", "1e-9"]);
  expect(cmp.stdout).toContain("first divergence: none");
  expect(cmp.code).toBe(0);
});
