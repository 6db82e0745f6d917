/**
 * Incremental detokenization that never emits a broken character.
 *
 * Byte-level tokens may end in the middle of a UTF-8 character (an emoji is often 2-4 tokens). The bytes go
 * through one streaming `TextDecoder`, which holds an incomplete character back until its last byte arrives.
 * An added token (`<think>`, `<|im_end|>`) ends the byte run first, exactly as the tokenizer's own `decode`
 * does, so the concatenation of everything `push` and `flush` return equals `tokenizer.decode(allIds)`.
 */
import type { QwenTokenizer } from "./tokenizer.js";

export class StreamDecoder {
  private utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

  constructor(
    private readonly tok: QwenTokenizer,
    private readonly opts: { skipSpecial?: boolean } = {},
  ) {}

  /** Adds one token; returns the text that is now complete (possibly ""). */
  push(id: number): string {
    const piece = this.tok.piece(id);
    if (piece === null) return "";
    if ("bytes" in piece) return this.utf8.decode(piece.bytes, { stream: true });
    if (this.opts.skipSpecial && this.tok.isSpecial(id)) return "";
    // End of a byte run: an unfinished character becomes U+FFFD, as in a one-shot decode.
    return this.utf8.decode() + piece.added;
  }

  /** Ends the stream: returns whatever is held back (an unfinished character as U+FFFD). */
  flush(): string {
    return this.utf8.decode();
  }
}
