/**
 * The `qwen3-next` command line: one sub-command per file in this folder, registered here.
 * Errors reach the user as one line on stderr and a non-zero exit code.
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";

/** Each sub-command module exports `register(program)`. */
type Register = (program: Command) => void;

const COMMANDS: Array<() => Promise<{ register: Register }>> = [
  // Add one line per sub-command module, e.g. () => import("./trace.js"),
  () => import("./trace.js"),
  () => import("./compare.js"),
  () => import("./info.js"),
  () => import("./serve.js"),
  () => import("./generate.js"),
  () => import("./chat.js"),
  () => import("./tokenize.js"),
  () => import("./init.js"),
  () => import("./quantize.js"),
  () => import("./explore.js"),
];

export async function main(argv: string[]): Promise<void> {
  const program = new Command("qwen3-next")
    .description("Qwen3-Next in TypeScript: trace, compare, generate, chat, serve")
    .version(packageVersion(), "-V, --version", "print the version")
    .exitOverride();
  for (const load of COMMANDS) (await load()).register(program);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed its one-line message (unknown option, missing argument, ...).
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    throw err;
  }
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}
