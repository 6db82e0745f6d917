/**
 * Damaged checkpoints, fuzzed: mutated safetensors headers (dtypes, shapes, offsets, the header length, raw
 * bytes), mutated index files and configs. Loading either succeeds or fails with one line that names a file,
 * never an internal message (TypeError, RangeError from an allocation) and never a hang.
 */
import { promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loadCheckpoint } from "../../src/loading/checkpoint.js";
import { REFERENCE_DIR } from "../helpers/reference.js";

const FIXTURE = path.join(REFERENCE_DIR, "tiny-moe-mtp");
const INTERNAL = /Cannot read propert|is not a function|is not iterable|Invalid typed array length|Array buffer allocation failed|Maximum call stack|Invalid array length|out of memory/i;

interface Parsed {
  header: Record<string, unknown>;
  data: Buffer;
}

async function readFixture(): Promise<Parsed> {
  const buf = await fsp.readFile(path.join(FIXTURE, "model.safetensors"));
  const n = Number(buf.readBigUInt64LE(0));
  return { header: JSON.parse(buf.subarray(8, 8 + n).toString("utf8")), data: buf.subarray(8 + n) };
}

function encode(headerText: string, data: Buffer, lengthOverride?: bigint): Buffer {
  const h = Buffer.from(headerText, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

const hugeOrOdd = fc.oneof(
  fc.constantFrom(0, -1, 1, 2 ** 31, 2 ** 32, 2 ** 53, 1e20, -1e20, 1.5, NaN, null, "8", true),
  fc.integer({ min: -10, max: 100_000 }),
);

/** One mutation of the header object, or of the file's bytes. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant("dtype" as const), at: fc.nat(), value: fc.constantFrom("F32", "F64", "F16", "I64", "U8", "BOOL", "Q4_0", "", 5, null) }),
  fc.record({ kind: fc.constant("shape" as const), at: fc.nat(), dim: fc.nat(3), value: hugeOrOdd }),
  fc.record({ kind: fc.constant("shapeWhole" as const), at: fc.nat(), value: fc.oneof(fc.constant(null), fc.constant("x"), fc.array(hugeOrOdd, { maxLength: 5 })) }),
  fc.record({ kind: fc.constant("offset" as const), at: fc.nat(), end: fc.boolean(), value: hugeOrOdd }),
  fc.record({ kind: fc.constant("offsetsWhole" as const), at: fc.nat(), value: fc.oneof(fc.constant(null), fc.array(hugeOrOdd, { maxLength: 3 })) }),
  fc.record({ kind: fc.constant("drop" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("rename" as const), at: fc.nat(), value: fc.string({ maxLength: 40 }) }),
  fc.record({ kind: fc.constant("entry" as const), at: fc.nat(), value: fc.jsonValue({ maxDepth: 2 }) }),
  fc.record({ kind: fc.constant("metadata" as const), value: fc.jsonValue({ maxDepth: 2 }) }),
  fc.record({ kind: fc.constant("headerText" as const), at: fc.nat(), value: fc.string({ maxLength: 8 }) }),
  fc.record({ kind: fc.constant("length" as const), value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
  fc.record({ kind: fc.constant("truncate" as const), keep: fc.double({ min: 0, max: 1, noNaN: true }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function apply(base: Parsed, muts: Mutation[]): Buffer {
  const header = structuredClone(base.header);
  const names = () => Object.keys(header).filter((k) => k !== "__metadata__");
  const pick = (at: number) => names()[at % names().length];
  let text: string | undefined;
  let length: bigint | undefined;
  let keep = 1;
  for (const m of muts) {
    const name = names().length > 0 ? pick("at" in m ? m.at : 0) : undefined;
    const entry = name ? (header[name] as Record<string, unknown>) : undefined;
    switch (m.kind) {
      case "dtype": if (entry && typeof entry === "object") entry.dtype = m.value; break;
      case "shape": if (entry && Array.isArray(entry.shape)) (entry.shape as unknown[])[m.dim % Math.max(1, entry.shape.length)] = m.value; break;
      case "shapeWhole": if (entry && typeof entry === "object") entry.shape = m.value; break;
      case "offset": if (entry && Array.isArray(entry.data_offsets)) (entry.data_offsets as unknown[])[m.end ? 1 : 0] = m.value; break;
      case "offsetsWhole": if (entry && typeof entry === "object") entry.data_offsets = m.value; break;
      case "drop": if (name) delete header[name]; break;
      case "rename": if (name) { header[m.value] = header[name]; delete header[name]; } break;
      case "entry": if (name) header[name] = m.value; break;
      case "metadata": header.__metadata__ = m.value; break;
      case "headerText": { const t = text ?? JSON.stringify(header); const i = m.at % (t.length + 1); text = t.slice(0, i) + m.value + t.slice(i + 1); break; }
      case "length": length = m.value; break;
      case "truncate": keep = m.keep; break;
    }
  }
  const file = encode(text ?? JSON.stringify(header), base.data, length);
  return file.subarray(0, Math.floor(file.length * keep));
}

describe("fuzzed safetensors headers", () => {
  it("load or fail with one line naming the file, never an internal error", async () => {
    const base = await readFixture();
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "qwen3-next-fuzz-"));
    await fsp.copyFile(path.join(FIXTURE, "config.json"), path.join(dir, "config.json"));
    const file = path.join(dir, "model.safetensors");
    let failed = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (muts) => {
        await fsp.writeFile(file, apply(base, muts));
        try {
          await loadCheckpoint(dir);
        } catch (err) {
          failed++;
          const msg = (err as Error).message;
          expect(msg.split("\n")).toHaveLength(1);
          expect(msg).toContain(dir);
          expect(msg).not.toMatch(INTERNAL);
          expect(msg.length).toBeLessThan(600);
        }
      }),
      { numRuns: 300, seed: 42 },
    );
    expect(failed).toBeGreaterThan(100); // the mutations do damage: most loads must fail
  });

  it("a sharded index that is damaged fails with one line too", async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "qwen3-next-fuzz-index-"));
    await fsp.copyFile(path.join(FIXTURE, "config.json"), path.join(dir, "config.json"));
    await fsp.copyFile(path.join(FIXTURE, "model.safetensors"), path.join(dir, "model-00001-of-00001.safetensors"));
    const base = await readFixture();
    const weightMap = Object.fromEntries(Object.keys(base.header).filter((k) => k !== "__metadata__").map((k) => [k, "model-00001-of-00001.safetensors"]));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue({ maxDepth: 3 }),
          fc.record({ weight_map: fc.dictionary(fc.constantFrom(...Object.keys(weightMap)), fc.oneof(fc.jsonValue({ maxDepth: 1 }), fc.constantFrom("../config.json", "/etc/passwd", "missing.safetensors", "model-00001-of-00001.safetensors"))) }),
        ),
        async (index) => {
          await fsp.writeFile(path.join(dir, "model.safetensors.index.json"), JSON.stringify(index));
          try {
            await loadCheckpoint(dir);
          } catch (err) {
            const msg = (err as Error).message;
            expect(msg.split("\n")).toHaveLength(1);
            expect(msg).not.toMatch(INTERNAL);
          }
        },
      ),
      { numRuns: 150, seed: 5 },
    );
  });
});
