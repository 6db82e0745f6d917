/** Per-token timings: each forward pass (the prompt's prefill, then one per generated token), in milliseconds. */
import type { RunData } from "../run_data.js";
import { bars } from "./bars.js";
import { section } from "./heatmap.js";

export function timingsView(d: RunData): HTMLElement[] {
  const calls = d.run.calls;
  // generate() prefills in chunks: the calls up to the prompt's length are prefill.
  let seen = 0;
  const prefill = calls.map((c) => (seen += c.tokens.length) <= d.promptLength);
  const r = d.run;
  const summary = document.createElement("p");
  summary.textContent =
    `Prompt: ${r.promptIds.length} tokens in ${(r.prefillSeconds * 1000).toFixed(0)} ms; ` +
    `${r.tokens.length} generated at ${r.tokensPerSecond.toFixed(1)} tok/s; first token ${r.firstTokenMs.toFixed(0)} ms after the request; ` +
    `${r.threads} thread${r.threads === 1 ? "" : "s"}. Times include tracing every layer and the logit lens.`;
  const nPrefill = prefill.filter(Boolean).length;
  return [
    section(
      "Forward passes",
      summary,
      bars({
        title: "milliseconds of each forward pass: the prompt's prefill (orange), then one per generated token (green)",
        values: calls.map((c) => c.ms),
        unit: "ms",
        colour: (i) => (prefill[i] ? "#e8923a" : "#4caf7a"),
        groups: [[0, "prefill"], ...(calls.length > nPrefill ? [[nPrefill, "decode →"] as [number, string]] : [])],
        describe: (i) =>
          prefill[i]
            ? `prefill of ${calls[i].tokens.length} prompt tokens: ${calls[i].ms.toFixed(1)} ms (${(calls[i].ms / calls[i].tokens.length).toFixed(2)} ms/token)`
            : `decode step ${i - nPrefill + 1}, reading ${JSON.stringify(d.token(calls[i].tokens[0]))}: ${calls[i].ms.toFixed(1)} ms`,
      }),
    ),
  ];
}
