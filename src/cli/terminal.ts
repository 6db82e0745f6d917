import type { OutputDelta } from "../generate/output_parser.js";

/**
 * Writes text to a stream, dimmed where asked when the stream is a terminal (plain text otherwise). Parsed
 * output is labelled, on a terminal and piped alike, when it has reasoning:
 *   [thinking]
 *   ...reasoning (dimmed on a terminal)...
 *   [answer]
 *   ...content...
 */
export class TerminalWriter {
  readonly isTTY: boolean;
  private section: "none" | OutputDelta["kind"] = "none";

  constructor(private readonly stream: NodeJS.WritableStream & { isTTY?: boolean }) {
    this.isTTY = stream.isTTY === true;
  }

  write(text: string, style: "plain" | "dim" = "plain"): void {
    if (text.length === 0) return;
    this.stream.write(style === "dim" && this.isTTY ? `\x1b[2m${text}\x1b[22m` : text);
  }

  /** Parsed output deltas: reasoning labelled (and dimmed), the answer plain. */
  writeDeltas(deltas: readonly OutputDelta[]): void {
    for (const d of deltas) {
      if (d.text.length === 0) continue;
      if (d.kind === "reasoning" && this.section !== "reasoning") this.write("[thinking]\n", "dim");
      if (d.kind === "content" && this.section === "reasoning") this.write("\n[answer]\n", "dim");
      this.section = d.kind;
      this.write(d.text, d.kind === "reasoning" ? "dim" : "plain");
    }
  }

  /** Ends a parsed answer with a newline; the next answer starts unlabelled again. */
  endDeltas(): void {
    this.write("\n");
    this.section = "none";
  }
}
