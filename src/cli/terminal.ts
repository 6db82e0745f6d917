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
}
