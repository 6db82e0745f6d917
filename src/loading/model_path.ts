/**
 * What `--model PATH` names: a Hugging Face checkpoint folder (config.json + safetensors), a GGUF file, or a
 * folder holding exactly one GGUF file (and no config.json). Every command resolves its path here, so that a
 * lone .gguf file works wherever a checkpoint folder does.
 */
import { readdirSync, statSync } from "node:fs";
import path from "node:path";

/** A folder holding several .gguf files and no config.json: which one is meant cannot be guessed. */
export class AmbiguousModelError extends Error {
  override name = "AmbiguousModelError";
}

export type ModelLocation = { kind: "checkpoint"; dir: string } | { kind: "gguf"; file: string };

/** Resolves a model path; throws one line saying what was found and what was expected. */
export function locateModel(p: string): ModelLocation {
  let st;
  try {
    st = statSync(p);
  } catch {
    throw new Error(`model folder or file ${p} does not exist; expected a checkpoint folder (config.json + safetensors) or a .gguf file`);
  }
  if (st.isFile()) {
    if (p.toLowerCase().endsWith(".gguf")) return { kind: "gguf", file: p };
    throw new Error(`model path ${p} is a file but not a .gguf file; expected a checkpoint folder or a .gguf file`);
  }
  if (!st.isDirectory()) throw new Error(`model path ${p} is neither a folder nor a file`);
  const names = readdirSync(p);
  if (names.includes("config.json")) return { kind: "checkpoint", dir: p };
  const ggufs = names.filter((n) => n.toLowerCase().endsWith(".gguf")).sort();
  if (ggufs.length === 1) return { kind: "gguf", file: path.join(p, ggufs[0]) };
  if (ggufs.length > 1) {
    throw new AmbiguousModelError(`${p} holds ${ggufs.length} GGUF files (${ggufs.join(", ")}) and no config.json; pass one of them with --model FILE.gguf`);
  }
  throw new Error(`${p} has no config.json and no .gguf file; expected a Hugging Face checkpoint folder or a GGUF file`);
}

/**
 * The GGUF file a path names, or undefined when it names no GGUF (a checkpoint folder, a path that does not
 * exist, a folder without .gguf files: the caller's own checks report those). A folder holding several .gguf
 * files and no config.json is ambiguous and throws.
 */
export function ggufFileOf(p: string): string | undefined {
  let loc: ModelLocation;
  try {
    loc = locateModel(p);
  } catch (e) {
    if (e instanceof AmbiguousModelError) throw e;
    return undefined;
  }
  return loc.kind === "gguf" ? loc.file : undefined;
}
