/**
 * `qwen3-next compare A.safetensors B.safetensors [--atol X] [--rtol X] [--json]`
 *
 * Compares two dumps (B is the reference) tensor by tensor; see src/io/compare-dumps.ts for the exact rules.
 * Exit status: 0 every shared tensor within tolerance, 1 some tensor over tolerance (or shapes differ),
 * 2 bad input (missing file, not safetensors, no tensor in common, bad flag).
 *
 * Text output (stable; other runtimes may parse it), one tensor per line in computation order:
 *   compare: A=<path> B=<path>
 *   tolerance: |a - b| <= atol + rtol * |b| with atol=<x> rtol=<x>
 *   <name> <status> shape=[d0,d1] dtype=<A>/<B> max_abs=<x> max_rel=<x> over=<n>/<count> worst=[i,j] a=<x> b=<x>
 *     fields are separated by runs of spaces (names are padded); status is "ok", "OVER" or "SHAPE"; integer
 *     tensors print `exact differing=<n>/<count> first=[i,j]` instead of the error fields; a SHAPE line prints
 *     `shape=[A dims]/[B dims] dtype=<A>/<B>` only; a missing value prints "-". worst=[t,...] is the multi-index
 *     of the largest |a - b| (its first index is the token position for [T, ...] tensors).
 *   only in A: <names...>           (when any)
 *   only in B: <names...>           (when any)
 *   first divergence: <name> (layer <i> | <name>) at token <t>, element [i,j]: a=<x> b=<x>   or   first divergence: none
 *     (tensors whose first axis is not the token, e.g. deltanet.{i}.state [head, dk, dv]: "at element [i,j,k]
 *     (head, dk, dv)")
 *   result: PASS|FAIL (<n> of <m> shared tensors over tolerance)
 * then, on stderr, a one-line hint about tolerances for the precisions compared.
 * `--json` prints the CompareReport object instead (non-finite numbers as null).
 */
import { Command, InvalidArgumentError } from "commander";
import { compareFiles, layerOf, type CompareReport, type TensorComparison } from "../io/compare-dumps.js";
import { readJsonFile } from "../io/json.js";
import { NameMap } from "../io/name_map.js";
import { SafetensorsError } from "../io/safetensors.js";

export function register(program: Command): void {
  program
    .command("compare")
    .description("compare two safetensors dumps tensor by tensor and report the first divergence (B is the reference)")
    .argument("<a>", "dump to check (.safetensors)")
    .argument("<b>", "reference dump (.safetensors)")
    .option("--atol <x>", "absolute tolerance", nonNegative, 1e-4)
    .option("--rtol <x>", "relative tolerance (times |b|)", nonNegative, 0)
    .option("--map <file>", 'JSON renaming A\'s tensors to B\'s names, e.g. {"hidden_states.{i+1}": "hidden.{i}"}')
    .option("--allow-missing", "compare the shared tensors even when some of B's are missing from A (warns)")
    .option("--json", "print a machine-readable report")
    .action(async (a: string, b: string, opts: { atol: number; rtol: number; json?: boolean; map?: string; allowMissing?: boolean }) => {
      let report: CompareReport;
      let map: NameMap | undefined;
      try {
        if (opts.map !== undefined) map = new NameMap(await readJsonFile(opts.map), opts.map);
      } catch (e) {
        badInput((e as Error).message);
        return;
      }
      try {
        report = await compareFiles(a, b, { atol: opts.atol, rtol: opts.rtol }, map);
      } catch (e) {
        if (!(e instanceof SafetensorsError)) throw e;
        badInput(e.message);
        return;
      }
      if (report.tensors.length === 0) {
        badInput(`${a} and ${b} have no tensor name in common, nothing to compare`);
        return;
      }
      const missing = report.onlyInB.length;
      const missingFails = missing > 0 && !opts.allowMissing;
      if (missingFails) report.ok = false;
      process.stdout.write(opts.json ? JSON.stringify({ ...report, missing_fails: missingFails }, jsonNumbers, 2) + "\n" : formatReport(report, missingFails));
      if (missing > 0 && opts.allowMissing) {
        process.stderr.write(`WARNING: ${missing} of ${missing + report.tensors.length} tensors of ${b} are not in ${a} and were NOT compared (--allow-missing)\n`);
      }
      if (!opts.json) process.stderr.write(hint(report) + "\n");
      process.exitCode = report.ok ? 0 : 1;
    });
}

function nonNegative(v: string): number {
  const x = Number(v);
  if (v.trim() === "" || !Number.isFinite(x) || x < 0) throw new InvalidArgumentError(`expected a number >= 0, got "${v}"`);
  return x;
}

function badInput(message: string): void {
  process.stderr.write(`qwen3-next: ${message}\n`);
  process.exitCode = 2;
}

function jsonNumbers(_key: string, v: unknown): unknown {
  return typeof v === "number" && !Number.isFinite(v) ? null : v;
}

export function formatReport(r: CompareReport, missingFails = false): string {
  const lines = [`compare: A=${r.a} B=${r.b}`, `tolerance: |a - b| <= atol + rtol * |b| with atol=${r.tolerance.atol} rtol=${r.tolerance.rtol}`];
  const width = Math.max(...r.tensors.map((t) => t.name.length));
  for (const t of r.tensors) lines.push(`${t.name.padEnd(width)} ${formatTensor(t)}`);
  if (r.onlyInA.length) lines.push(`only in A: ${r.onlyInA.join(" ")}`);
  if (r.onlyInB.length) lines.push(`only in B: ${r.onlyInB.join(" ")}`);
  lines.push(`coverage: ${r.tensors.length} of ${r.tensors.length + r.onlyInB.length} tensors of B compared`);
  if (r.onlyInB.length) {
    lines.push(`missing: ${r.onlyInB.length} tensors of B are not in A (${missingFails ? "FAIL; --allow-missing compares the shared ones" : "allowed by --allow-missing"})`);
  }
  const f = r.firstDivergence;
  if (!f) lines.push("first divergence: none");
  else {
    const layer = layerOf(f.name);
    const where = layer === null ? f.name : `layer ${layer}`;
    const at =
      f.status === "shape"
        ? `shapes differ: A ${shape(f.shapeA)} vs B ${shape(f.shapeB)}`
        : f.worst!.token === null
          ? `at element ${shape(f.worst!.index)} (${f.worst!.axes.join(", ")}): a=${num(f.worst!.a)} b=${num(f.worst!.b)}`
          : `at token ${f.worst!.token}, element ${shape(f.worst!.index)}: a=${num(f.worst!.a)} b=${num(f.worst!.b)}`;
    lines.push(`first divergence: ${f.name} (${where}) ${at}`);
  }
  const bad = r.tensors.filter((t) => t.status !== "ok").length;
  lines.push(`result: ${r.ok ? "PASS" : "FAIL"} (${bad} of ${r.tensors.length} shared tensors over tolerance${missingFails ? `; ${r.onlyInB.length} of B's tensors missing from A` : ""})`);
  return lines.join("\n") + "\n";
}

function formatTensor(t: TensorComparison): string {
  const status = t.status === "ok" ? "ok" : t.status === "over" ? "OVER" : "SHAPE";
  const dims = t.status === "shape" ? `shape=${shape(t.shapeA)}/${shape(t.shapeB)}` : `shape=${shape(t.shapeB)}`;
  const head = `${status} ${dims} dtype=${t.dtypeA}/${t.dtypeB}`;
  if (t.status === "shape") return head;
  if (t.kind === "integer") {
    return `${head} exact differing=${t.over}/${t.count} first=${t.worst ? shape(t.worst.index) : "-"}`;
  }
  const w = t.worst ? `worst=${shape(t.worst.index)} a=${num(t.worst.a)} b=${num(t.worst.b)}` : "worst=- a=- b=-";
  return `${head} max_abs=${num(t.maxAbs)} max_rel=${num(t.maxRel)} over=${t.over}/${t.count} ${w}`;
}

function shape(s: readonly number[]): string {
  return `[${s.join(",")}]`;
}

function num(x: number | null): string {
  if (x === null) return "-";
  if (x === 0 || !Number.isFinite(x)) return String(x);
  return x.toExponential(3);
}

function hint(r: CompareReport): string {
  const dtypes = new Set(r.tensors.filter((t) => t.kind === "float").flatMap((t) => [t.dtypeA, t.dtypeB]));
  const lowest = dtypes.has("BF16") || dtypes.has("F16") ? "16-bit" : dtypes.has("F32") ? "F32" : "F64";
  return (
    `hint: dumps of the same model agree to about 1e-9 when both are float64 (--atol 1e-9) and to about 1e-3 when ` +
    `one was computed in float32 (--atol 1e-3); the lowest precision here is ${lowest}. Expert ids must match exactly.`
  );
}
