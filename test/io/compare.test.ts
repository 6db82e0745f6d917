import { promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compareValues, computationOrder } from "../../src/io/compare-dumps.js";
import { readSafetensors, writeSafetensors, type TensorToWrite } from "../../src/io/safetensors.js";
import { ROOT, runCli } from "../helpers/cli.js";

const EXPECTED = path.join(ROOT, "reference/tiny-moe-mtp/expected.safetensors");
let tmp: string;
beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "compare-test-"));
});
afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

/** A copy of the fixture dump with some tensors changed. */
async function variant(name: string, change: (ts: Map<string, TensorToWrite>) => void): Promise<string> {
  const { tensors, metadata } = await readSafetensors(EXPECTED);
  const ts = new Map<string, TensorToWrite>(
    [...tensors].map(([k, t]) => [k, { name: k, dtype: t.dtype, shape: [...t.shape], data: t.data.slice() }]),
  );
  change(ts);
  const p = path.join(tmp, name);
  await writeSafetensors(p, [...ts.values()], metadata);
  return p;
}

describe("compareValues", () => {
  const f64 = (values: number[], shape = [values.length]) => ({ dtype: "F64" as const, shape, values: Float64Array.from(values) });

  it("max abs and rel errors and the over-tolerance count agree with a direct computation", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.double({ min: -10, max: 10, noNaN: true }), fc.double({ min: -1, max: 1, noNaN: true })), { minLength: 1, maxLength: 40 }),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        (pairs, atol) => {
          const b = pairs.map(([x]) => x);
          const a = pairs.map(([x, d]) => x + d);
          const r = compareValues("t", f64(a), f64(b), { atol, rtol: 0 });
          const errs = a.map((x, i) => Math.abs(x - b[i]));
          const maxAbs = Math.max(...errs);
          const rels = errs.filter((_, i) => b[i] !== 0).map((e, i) => e / Math.abs(b.filter((y) => y !== 0)[i]));
          expect(r.maxAbs).toBe(maxAbs);
          expect(r.maxRel).toBe(rels.length ? Math.max(...rels) : 0);
          expect(r.over).toBe(errs.filter((e) => e > atol).length);
          expect(r.status).toBe(r.over > 0 ? "over" : "ok");
          if (maxAbs > 0) expect(errs[r.worst!.index[0]]).toBe(maxAbs);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("applies atol + rtol * |b|, locates the worst element by token, and treats NaN and infinities strictly", () => {
    const r = compareValues("x", f64([1, 2, 3, 4.5, 5, 6], [3, 2]), f64([1, 2, 3, 4, 5, 6], [3, 2]), { atol: 0, rtol: 0.1 });
    expect(r).toMatchObject({ status: "over", over: 1, worst: { index: [1, 1], token: 1, a: 4.5, b: 4 } });
    expect(compareValues("x", f64([4.39]), f64([4]), { atol: 0, rtol: 0.1 }).status).toBe("ok");
    expect(compareValues("x", f64([NaN, Infinity]), f64([NaN, Infinity]), { atol: 0, rtol: 0 }).status).toBe("ok");
    expect(compareValues("x", f64([NaN]), f64([1]), { atol: 1e9, rtol: 0 })).toMatchObject({ status: "over", maxAbs: Infinity });
    expect(compareValues("x", f64([Infinity]), f64([-Infinity]), { atol: 1e9, rtol: 0 }).status).toBe("over");
  });

  it("compares integer tensors exactly and shapes strictly", () => {
    const ids = (v: number[]) => ({ dtype: "I64" as const, shape: [2, 2], values: Float64Array.from(v) });
    expect(compareValues("e", ids([1, 2, 3, 4]), ids([1, 2, 4, 3]), { atol: 10, rtol: 0 })).toMatchObject({
      kind: "integer",
      status: "over",
      over: 2,
      worst: { index: [1, 0], token: 1 },
    });
    expect(compareValues("e", { ...ids([1, 2, 3, 4]), dtype: "I32" }, ids([1, 2, 3, 4]), { atol: 0, rtol: 0 }).status).toBe("ok");
    expect(compareValues("s", f64([1, 2], [2]), f64([1, 2], [1, 2]), { atol: 1, rtol: 0 }).status).toBe("shape");
  });

  it("orders dump tensors as they are computed", () => {
    const names = ["mtp_logits", "logits", "hidden.10", "router.2.weights", "hidden.2", "deltanet.2.state", "input_ids", "final_hidden", "hidden.1", "router.2.experts"];
    const sorted = [...names].sort((x, y) => {
      const a = computationOrder(x);
      const b = computationOrder(y);
      return a[0] - b[0] || a[1] - b[1] || a[2] - b[2] || a[3].localeCompare(b[3]);
    });
    expect(sorted).toEqual([
      "input_ids",
      "hidden.1",
      "deltanet.2.state",
      "router.2.experts",
      "router.2.weights",
      "hidden.2",
      "hidden.10",
      "final_hidden",
      "logits",
      "mtp_logits",
    ]);
  });
});

describe("qwen3-next compare", () => {
  it("identical dumps: exit 0, every tensor ok, no divergence", async () => {
    const r = await runCli(["compare", EXPECTED, EXPECTED]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^hidden\.0 +ok shape=\[14,64\] dtype=F64\/F64 max_abs=0 max_rel=0 over=0\/896/m);
    expect(r.stdout).toMatch(/^router\.0\.experts +ok shape=\[14,2\] dtype=I64\/I64 exact differing=0\/28/m);
    expect(r.stdout).toContain("first divergence: none");
    expect(r.stdout).toContain("result: PASS (0 of 16 shared tensors over tolerance)");
    expect(r.stderr).toMatch(/^hint: /);
  });

  it("a perturbed copy: exit 1, naming the first diverging layer, token and element", async () => {
    const p = await variant("perturbed.safetensors", (ts) => {
      (ts.get("hidden.2")!.data as Float64Array)[5 * 64 + 17] += 0.01;
      (ts.get("logits")!.data as Float64Array)[3] += 1;
      ts.delete("mtp_logits");
    });
    const r = await runCli(["compare", p, EXPECTED]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^hidden\.2 +OVER shape=\[14,64\] dtype=F64\/F64 max_abs=1\.000e-2 .*over=1\/896 worst=\[5,17\]/m);
    expect(r.stdout).toMatch(/^hidden\.1 +ok /m);
    expect(r.stdout).toMatch(/^first divergence: hidden\.2 \(layer 2\) at token 5, element \[5,17\]: a=/m);
    expect(r.stdout).toContain("only in B: mtp_logits");
    expect(r.stdout).toContain("result: FAIL (2 of 15 shared tensors over tolerance; 1 of B's tensors missing from A)");
    // Within a looser tolerance, and accepting the missing tensor, it passes.
    const loose = await runCli(["compare", p, EXPECTED, "--atol", "2", "--allow-missing"]);
    expect(loose.code).toBe(0);
  });

  it("a changed expert id is found exactly, before the later hidden states; --json is machine-readable", async () => {
    const p = await variant("experts.safetensors", (ts) => {
      const e = ts.get("router.1.experts")!.data as BigInt64Array;
      e[2 * 6 + 1] = (e[2 * 6 + 1] + 1n) % 8n;
      (ts.get("hidden.3")!.data as Float64Array)[0] += 1;
    });
    const r = await runCli(["compare", p, EXPECTED, "--json"]);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.ok).toBe(false);
    expect(report.firstDivergence).toMatchObject({ name: "router.1.experts", kind: "integer", over: 1, worst: { index: [6, 1], token: 6 } });
    expect(report.tensors.map((t: { name: string }) => t.name).slice(0, 3)).toEqual(["input_ids", "router.0.experts", "router.0.weights"]);
  });

  it("a shape mismatch fails the tensor", async () => {
    const p = await variant("shape.safetensors", (ts) => {
      ts.set("final_hidden", { name: "final_hidden", dtype: "F64", shape: [14, 32], data: new Float64Array(14 * 32) });
    });
    const r = await runCli(["compare", p, EXPECTED]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^final_hidden +SHAPE shape=\[14,32\]\/\[14,64\]/m);
    expect(r.stdout).toContain("first divergence: final_hidden (final_hidden) shapes differ: A [14,32] vs B [14,64]");
  });

  it("bad input exits 2 with one line: a missing file, a file that is not safetensors, a bad flag", async () => {
    const missing = await runCli(["compare", path.join(tmp, "nope.safetensors"), EXPECTED]);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toMatch(/^qwen3-next: .*nope\.safetensors: cannot open \(ENOENT\)$/);
    const notSt = await runCli(["compare", EXPECTED, path.join(ROOT, "reference/tiny-moe-mtp/config.json")]);
    expect(notSt.code).toBe(2);
    expect(notSt.stderr.trim().split("\n")).toHaveLength(1);
    expect(notSt.stderr).toMatch(/config\.json: header length \d+ (is absurd|exceeds the file size)/);
    const badFlag = await runCli(["compare", EXPECTED, EXPECTED, "--atol", "abc"]);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/expected a number >= 0, got "abc"/);
  });

  it("fails when the reference's tensors are missing from A, unless --allow-missing (which warns)", async () => {
    const p = await variant("few.safetensors", (ts) => {
      for (const name of [...ts.keys()]) if (!["input_ids", "hidden.0", "logits"].includes(name)) ts.delete(name);
    });
    const r = await runCli(["compare", p, EXPECTED]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("coverage: 3 of 16 tensors of B compared");
    expect(r.stdout).toContain("missing: 13 tensors of B are not in A (FAIL; --allow-missing compares the shared ones)");
    expect(r.stdout).toContain("first divergence: none");
    expect(r.stdout).toMatch(/^result: FAIL \(0 of 3 shared tensors over tolerance; 13 of B's tensors missing from A\)$/m);
    const allowed = await runCli(["compare", p, EXPECTED, "--allow-missing"]);
    expect(allowed.code).toBe(0);
    expect(allowed.stderr).toMatch(/^WARNING: 13 of 16 tensors of .* are not in .* and were NOT compared \(--allow-missing\)$/m);
    expect(allowed.stdout).toContain("result: PASS");
    // Extra tensors in A (a trace has more than the fixture) are fine.
    const extra = await variant("extra.safetensors", (ts) => {
      ts.set("embedding", { name: "embedding", dtype: "F64", shape: [14, 64], data: new Float64Array(14 * 64) });
    });
    expect((await runCli(["compare", extra, EXPECTED])).code).toBe(0);
  });

  it("--map renames another runtime's tensors (Hugging Face output_hidden_states)", async () => {
    // HF's hidden_states tuple: [embeddings, layer 0 out, ..., layer N-2 out, final norm]; here N = 4.
    const hf = await variant("hf.safetensors", (ts) => {
      const keep = new Map(ts);
      ts.clear();
      for (const i of [0, 1, 2]) ts.set(`hidden_states.${i + 1}`, { ...keep.get(`hidden.${i}`)!, name: `hidden_states.${i + 1}` });
      ts.set("hidden_states.4", { ...keep.get("final_hidden")!, name: "hidden_states.4" });
    });
    const map = path.join(tmp, "hf-map.json");
    await fsp.writeFile(map, JSON.stringify({ "hidden_states.{i+1}": "hidden.{i}", "hidden_states.4": "final_hidden" }));
    const unmapped = await runCli(["compare", hf, EXPECTED]);
    expect(unmapped.code).toBe(2);
    expect(unmapped.stderr).toMatch(/no tensor name in common/);
    const r = await runCli(["compare", hf, EXPECTED, "--map", map, "--allow-missing"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^hidden\.0 +ok /m);
    expect(r.stdout).toMatch(/^hidden\.2 +ok /m);
    expect(r.stdout).toMatch(/^final_hidden +ok /m);
    expect(r.stdout).toContain("coverage: 4 of 16 tensors of B compared");
    const badMap = path.join(tmp, "bad-map.json");
    await fsp.writeFile(badMap, JSON.stringify({ "a.{i}.{i}": "b" }));
    const bad = await runCli(["compare", hf, EXPECTED, "--map", badMap]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/has more than one \{i\}/);
  });

  it("labels the axes of tensors that are not per token: deltanet.{i}.state is [head, dk, dv]", async () => {
    const state = (bump: number) => (ts: Map<string, TensorToWrite>) => {
      const data = Float64Array.from({ length: 4 * 16 * 16 }, (_, i) => Math.sin(i));
      data[2 * 256 + 3 * 16 + 4] += bump;
      ts.set("deltanet.1.state", { name: "deltanet.1.state", dtype: "F64", shape: [4, 16, 16], data });
    };
    const ref = await variant("state-ref.safetensors", state(0));
    const p = await variant("state.safetensors", state(0.5));
    const r = await runCli(["compare", p, ref, "--json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).firstDivergence.worst).toMatchObject({ index: [2, 3, 4], axes: ["head", "dk", "dv"], token: null });
    const text = await runCli(["compare", p, ref]);
    expect(text.stdout).toMatch(/^first divergence: deltanet\.1\.state \(layer 1\) at element \[2,3,4\] \(head, dk, dv\): a=/m);
  });
});
