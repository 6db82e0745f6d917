/** Warns on stderr, one line each, about config.json keys the parser does not know (see src/config_keys.ts). */
import { existsSync } from "node:fs";
import { readJsonFile } from "../io/json.js";
import { unknownConfigKeyWarnings } from "../config_keys.js";

export async function warnUnknownConfigKeys(file: string): Promise<void> {
  if (!existsSync(file)) return;
  let raw: unknown;
  try {
    raw = await readJsonFile(file);
  } catch {
    return; // the loader reports a config that does not parse
  }
  for (const w of unknownConfigKeyWarnings(raw, file)) process.stderr.write(`warning: ${w}\n`);
}
