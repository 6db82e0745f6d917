/**
 * `qwen3-next explore [--model DIR|FILE] [--port 8080] [--no-open]`: the browser explorer (web/), which runs the
 * model in the page on the project's own WASM kernels, served with a checkpoint on 127.0.0.1 (see
 * src/explore/site.ts). Without --model it serves the built-in demo checkpoint. Opens the browser unless
 * --no-open; Ctrl-C or SIGTERM stops it.
 */
import { spawn } from "node:child_process";
import { Command, InvalidArgumentError } from "commander";
import { DEMO_NAME, demoNotice, ensureDemoCheckpoint } from "../init/demo.js";
import { startSite } from "../explore/site.js";
import { positiveInt } from "./options.js";
import { progressBar } from "./progress.js";

interface ExploreFlags {
  model?: string;
  port: number;
  open: boolean;
}

export function register(program: Command): void {
  program
    .command("explore")
    .description("open the browser explorer: the model runs in the page (routing, DeltaNet state, attention, logit lens, MTP)")
    .option("--model <dir|file>", "checkpoint folder or .gguf file (default: the built-in demo checkpoint, random weights)")
    .option("--port <port>", "port on 127.0.0.1 (0: any free port)", port, 8080)
    .option("--no-open", "do not open a browser")
    .action(run);
}

async function run(o: ExploreFlags): Promise<void> {
  let model = o.model;
  let name: string | undefined;
  if (model === undefined) {
    const bar = progressBar("creating the demo checkpoint");
    model = await ensureDemoCheckpoint({ onProgress: bar.update });
    bar.done();
    name = `qwen3-next-${DEMO_NAME}`;
    process.stderr.write(`${demoNotice(model)}\n`);
  }
  const site = await startSite({ model, name, port: o.port });
  process.stdout.write(`Explorer at ${site.url} (Ctrl-C to stop)\n`);
  if (o.open) openBrowser(site.url);
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  await site.close();
}

function port(v: string): number {
  const n = positiveInt("--port", 0)(v);
  if (n > 65535) throw new InvalidArgumentError(`--port expects an integer from 0 to 65535, got ${JSON.stringify(v)}`);
  return n;
}

/** The platform's "open this URL" command; a missing one only costs a line on stderr. */
function openBrowser(url: string): void {
  const [cmd, args] =
    process.platform === "darwin" ? ["open", [url]] : process.platform === "win32" ? ["cmd", ["/c", "start", "", url]] : ["xdg-open", [url]];
  const child = spawn(cmd, args, { stdio: "ignore", detached: true });
  child.on("error", () => process.stderr.write(`qwen3-next: could not open a browser (${cmd}); open ${url} yourself\n`));
  child.unref();
}
