import type { OutputDelta } from "../generate/output_parser.js";

/** Writes text to a stream, dimmed where asked when the stream is a terminal (plain text otherwise). */
export class TerminalWriter {
  readonly isTTY: boolean;

  constructor(private readonly stream: NodeJS.WritableStream & { isTTY?: boolean }) {
    this.isTTY = stream.isTTY === true;
  }

  write(text: string, style: "plain" | "dim" = "plain"): void {
    if (text.length === 0) return;
    this.stream.write(style === "dim" && this.isTTY ? `\x1b[2m${text}\x1b[22m` : text);
  }

  /** Parsed output deltas: reasoning dimmed, the answer plain. */
  writeDeltas(deltas: readonly OutputDelta[]): void {
    for (const d of deltas) this.write(d.text, d.kind === "reasoning" ? "dim" : "plain");
  }
}
