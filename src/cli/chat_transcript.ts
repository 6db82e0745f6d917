/**
 * A chat whose model state is kept between turns, as llama-cli keeps its context: each turn prefills only what
 * is new (the close of the last answer and the new user message, as the chat template renders them) after the
 * tokens the state already holds. The answers stay in the state exactly as they were generated.
 *
 * The new text comes from the template itself: render(history + user) minus render(history) when the first
 * extends the second; when it does not (templates that re-render earlier turns, e.g. dropping old reasoning),
 * the user turn rendered alone, which is how it ends the full prompt; when neither fits, the whole conversation
 * is prefilled again on a fresh state (`restarted`).
 */
import type { Continuation } from "../generate/generate.js";
import { promptOpensThinking, type ChatMessage, type ChatTemplate } from "../tokenizer/chat_template.js";
import type { QwenTokenizer } from "../tokenizer/tokenizer.js";

export interface Turn {
  /** Tokens to prefill after the kept ones. */
  ids: number[];
  /** The assistant's output starts inside an open `<think>`. */
  thinkingOpened: boolean;
  /** The kept state could not be continued: these ids are the whole conversation on a fresh state. */
  restarted: boolean;
}

export class ChatTranscript {
  readonly continuation: Continuation<{ free(): void }> = { state: null, tokens: [] };
  private history: ChatMessage[] = [];

  constructor(
    private readonly template: ChatTemplate,
    private readonly tokenizer: QwenTokenizer,
    private readonly system: ChatMessage[],
  ) {}

  get messages(): ChatMessage[] {
    return [...this.system, ...this.history];
  }

  /** The tokens for a new user message (the message is not added until `commit`). */
  prepare(user: string, enableThinking: boolean | undefined): Turn {
    const msg: ChatMessage = { role: "user", content: user };
    const full = this.template.render([...this.messages, msg], { enableThinking });
    const thinkingOpened = promptOpensThinking(full);
    const fresh = (): Turn => ({ ids: this.tokenizer.encode(full), thinkingOpened, restarted: this.continuation.tokens.length > 0 });
    if (this.continuation.tokens.length === 0 || this.history.length === 0) return fresh();
    const base = this.template.render(this.messages, { enableThinking, addGenerationPrompt: false });
    const alone = this.template.render([msg], { enableThinking });
    const suffix = full.startsWith(base) ? full.slice(base.length) : full.endsWith(alone) ? alone : null;
    // The state holds the last answer without its end-of-turn token (sampled, never fed): close it as the
    // template does, from that token on.
    const close = Math.max(...this.tokenizer.eosIds.map((id) => base.lastIndexOf(this.tokenizer.decode([id]))));
    if (suffix === null || close < 0) return fresh();
    return { ids: this.tokenizer.encode(base.slice(close) + suffix), thinkingOpened, restarted: false };
  }

  /** Records a finished turn. A restarted turn's fresh state replaced the old one (already freed). */
  commit(user: string, answer: ChatMessage): void {
    this.history.push({ role: "user", content: user }, answer);
  }

  /** Drops the state before a restarted turn prefills on a fresh one. */
  dropState(): void {
    this.continuation.state?.free();
    this.continuation.state = null;
    this.continuation.tokens = [];
  }

  /** Forgets the conversation (the system message stays). */
  reset(): void {
    this.dropState();
    this.history = [];
  }
}
