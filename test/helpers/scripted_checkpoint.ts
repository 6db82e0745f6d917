/**
 * A checkpoint that says what it is told: the demo checkpoint changed so that greedy decoding follows a chain of
 * tokens t0 -> t1 -> ... -> tn, whatever came before the last token.
 *   - every mixer and MLP output projection is zero, so each layer adds nothing and the final hidden state is
 *     norm(embed(x)) of the last token x (final norm weight zero: scale 1);
 *   - the embedding row of t_i (i < n) is the basis vector e_i, and lm_head (untied) row t_{i+1} is e_i, every
 *     other lm_head row zero: after t_i the logits are sqrt(hidden) at t_{i+1} and 0 everywhere else.
 * The t_i (i < n) must be distinct, at most `hidden_size` of them.
 */
import { copyFile } from "node:fs/promises";
import path from "node:path";
import { rewriteCheckpoint } from "../loading/rewrite.js";

export async function writeScriptedCheckpoint(demo: string, dst: string, chain: readonly number[]): Promise<void> {
  const from = chain.slice(0, -1);
  if (new Set(from).size !== from.length) throw new Error("scripted checkpoint: a token cannot lead to two others");
  let hidden = 0;
  let vocab = 0;
  await rewriteCheckpoint(demo, dst, {
    config: (c) => {
      hidden = c.hidden_size as number;
      vocab = c.vocab_size as number;
      if (from.length > hidden) throw new Error(`scripted checkpoint: at most ${hidden} tokens`);
      return { ...c, tie_word_embeddings: false };
    },
    tensors: (ts) => {
      const bf16One = 0x3f80;
      const out = ts.map((t) => {
        if (/(out_proj|o_proj|down_proj)\.weight$/.test(t.name) || t.name === "model.norm.weight") {
          return { ...t, data: new Uint16Array(t.data.byteLength / 2) };
        }
        if (t.name === "model.embed_tokens.weight") {
          const data = Uint16Array.from(t.data as Uint16Array);
          from.forEach((x, i) => {
            data.fill(0, x * hidden, (x + 1) * hidden);
            data[x * hidden + i] = bf16One;
          });
          return { ...t, data };
        }
        return t;
      });
      const head = new Uint16Array(vocab * hidden);
      from.forEach((_, i) => (head[chain[i + 1] * hidden + i] = bf16One));
      out.push({ name: "lm_head.weight", dtype: "BF16", shape: [vocab, hidden], data: head });
      return out;
    },
  });
  for (const f of ["generation_config.json", "tokenizer.json", "tokenizer_config.json"]) await copyFile(path.join(demo, f), path.join(dst, f));
}
