/**
 * A one-line progress bar on stderr, shown only when stderr is a terminal (quiet when piped or in tests).
 *
 *   const bar = progressBar("loading");  loadModel(dir, { onProgress: bar.update });  bar.done();
 */
export interface ProgressBar {
  update(done: number, total: number): void;
  /** Clears the line. */
  done(): void;
}

export function progressBar(label: string, unit: "bytes" | "tokens" | "layers" = "bytes", stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  if (!stream.isTTY) return { update: () => undefined, done: () => undefined };
  let last = 0;
  let shown = false;
  const fmt = (n: number) => (unit === "bytes" ? `${(n / 1024 ** 2).toFixed(n < 10 * 1024 ** 2 ? 1 : 0)} MiB` : `${n}`);
  return {
    update(done, total) {
      const now = Date.now();
      if (now - last < 80 && done < total) return; // at most ~12 redraws a second
      last = now;
      const width = 30;
      const frac = total > 0 ? Math.min(1, done / total) : 1;
      const filled = Math.round(frac * width);
      stream.write(`\r${label} [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${fmt(done)}/${fmt(total)}${unit === "bytes" ? "" : ` ${unit}`}\x1b[K`);
      shown = true;
    },
    done() {
      if (shown) stream.write("\r\x1b[K");
      shown = false;
    },
  };
}
