/** Reading JSON files (config.json, generation_config.json, tokenizer files) with one-line errors. */
import { readFile } from "node:fs/promises";

/** Reads and parses a JSON file, with a one-line error naming the file. */
export async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON (${(err as Error).message})`);
  }
}
