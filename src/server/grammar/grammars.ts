/**
 * Constrained decoding: the grammar a request's output must follow, compiled by XGrammar against the
 * tokenizer's vocabulary, and one matcher per generated sequence (a `TokenConstraint` for the scheduler).
 *
 *   response_format json_object          -> a JSON object
 *   response_format json_schema (strict) -> JSON valid against the schema (no extra properties when strict)
 *   tool_choice "required"               -> one or more (parallel_tool_calls) Qwen/Hermes tool calls:
 *        <tool_call>\n{"name": "<tool>", "arguments": <JSON of the tool's parameters schema>}\n</tool_call>
 *   tool_choice {function: {name}}       -> exactly one such call of that function
 * When the prompt opened `<think>` (thinking models) the reasoning is free text up to `</think>\n\n`.
 * JSON is written on one line with ", " and ": " separators: no free whitespace for a weak model to wander
 * into. After the grammar is complete only an end-of-sequence token is allowed, so generation stops there.
 * Compiled grammars are cached (compiling takes 0.3-1.5 s with Qwen's 151k-token vocabulary).
 */
import type { CompiledGrammar, GrammarCompiler, StructuralTagFormat } from "@mlc-ai/web-xgrammar";
import type { QwenTokenizer } from "../../tokenizer/tokenizer.js";
import { badRequest } from "../errors.js";
import type { ChatBody, ResponseFormat } from "../requests.js";
import { toolChoice } from "../requests.js";
import type { TokenConstraint } from "../scheduler.js";
import { xgrammar } from "./xgrammar.js";

/** The grammar layout of a Qwen tool call (the Hermes format of Qwen's chat template). */
export const TOOL_CALL_BEGIN = (name: string) => `<tool_call>\n{"name": ${JSON.stringify(name)}, "arguments": `;
export const TOOL_CALL_END = "}\n</tool_call>";

export class Grammars {
  private compiler: Promise<GrammarCompiler> | undefined;
  private readonly cache = new Map<string, Promise<CompiledGrammar>>();

  /** `logitRows`: the model's vocab_size (logit rows, possibly more than the tokenizer's ids). */
  constructor(
    private readonly tokenizer: QwenTokenizer,
    private readonly logitRows: number,
    private readonly cacheSize = 32,
  ) {}

  /** Builds XGrammar's view of the vocabulary once (about 0.25 s for Qwen's). */
  private getCompiler(): Promise<GrammarCompiler> {
    this.compiler ??= (async () => {
      const xgr = xgrammar();
      const vocab: string[] = [];
      for (let id = 0; id < this.tokenizer.vocabSize; id++) vocab.push(this.tokenizer.tokenString(id) ?? "");
      const info = await xgr.TokenizerInfo.createTokenizerInfo(vocab, "byte_level", false, this.logitRows, this.tokenizer.eosIds);
      return xgr.GrammarCompiler.createGrammarCompiler(info, true);
    })();
    return this.compiler;
  }

  /** A constraint factory for a chat request, or undefined when its output is free. */
  async forChat(body: ChatBody, thinkingOpened: boolean): Promise<(() => TokenConstraint) | undefined> {
    const choice = toolChoice(body);
    if (choice === "required" || typeof choice === "object") {
      const tools = (body.tools ?? []).filter((t) => choice === "required" || t.function.name === choice.name);
      const tags = await Promise.all(
        tools.map(async (t) => ({
          type: "tag" as const,
          begin: TOOL_CALL_BEGIN(t.function.name),
          content: await this.schemaGrammar(t.function.parameters ?? { type: "object" }, true, `tools: ${t.function.name}`),
          end: TOOL_CALL_END,
        })),
      );
      const calls: StructuralTagFormat =
        typeof choice === "object"
          ? tags[0]
          : { type: "tags_with_separator", tags, separator: "\n", at_least_one: true, stop_after_first: body.parallel_tool_calls === false };
      return this.structural(thinkingOpened ? sequenceAfterThinking(calls) : calls, "tools");
    }
    return this.forFormat(body.response_format, thinkingOpened);
  }

  /** A constraint factory for `response_format` (text: none). */
  async forFormat(format: ResponseFormat | null | undefined, thinkingOpened = false): Promise<(() => TokenConstraint) | undefined> {
    if (!format || format.type === "text") return undefined;
    const [schema, strict, param] =
      format.type === "json_object"
        ? [{ type: "object" }, false, "response_format"]
        : [format.json_schema.schema ?? {}, format.json_schema.strict ?? false, "response_format.json_schema.schema"];
    if (thinkingOpened) return this.structural(sequenceAfterThinking(await this.schemaGrammar(schema, strict, param)), param);
    const text = JSON.stringify(schema);
    return this.compiled(`schema:${strict}:${text}`, (c) => c.compileJSONSchema(text, false, -1, undefined, strict), param);
  }

  /** The EBNF grammar of JSON valid against `schema` (one line), as a structural-tag element. */
  private async schemaGrammar(schema: object, strict: boolean, param: string): Promise<StructuralTagFormat> {
    try {
      const grammar = await xgrammar().Grammar.fromJSONSchema(JSON.stringify(schema), false, -1, undefined, strict);
      const ebnf = grammar.toString();
      grammar.dispose();
      return { type: "grammar", grammar: ebnf };
    } catch (err) {
      throw badRequest(`${param} cannot be turned into a grammar: ${errorText(err)}`, param.split(":")[0]);
    }
  }

  private structural(format: StructuralTagFormat, param: string) {
    const tag = { type: "structural_tag" as const, format };
    return this.compiled(`tag:${JSON.stringify(tag)}`, (c) => c.compileStructuralTag(tag), param);
  }

  private async compiled(
    key: string,
    compile: (c: GrammarCompiler) => Promise<CompiledGrammar>,
    param: string,
  ): Promise<() => TokenConstraint> {
    let grammar = this.cache.get(key);
    if (grammar) {
      this.cache.delete(key); // least recently used first
    } else {
      grammar = this.getCompiler().then(compile);
      grammar.catch(() => this.cache.delete(key));
    }
    this.cache.set(key, grammar);
    while (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value as string);
    let compiled: CompiledGrammar;
    try {
      compiled = await grammar;
    } catch (err) {
      throw badRequest(`${param} cannot be turned into a grammar: ${errorText(err)}`, param);
    }
    return () => matcherConstraint(compiled);
  }
}

/** Free reasoning up to `</think>` and the blank line Qwen writes after it, then `then`. */
function sequenceAfterThinking(then: StructuralTagFormat): StructuralTagFormat {
  return { type: "sequence", elements: [{ type: "tag", begin: "", content: { type: "any_text" }, end: "</think>\n\n" }, then] };
}

/** A scheduler constraint over a fresh XGrammar matcher (created asynchronously, before the first mask). */
function matcherConstraint(compiled: CompiledGrammar): TokenConstraint {
  const xgr = xgrammar();
  const matcher = xgr.GrammarMatcher.createGrammarMatcher(compiled);
  let ready: Awaited<typeof matcher> | undefined;
  let freed = false;
  const use = () => {
    if (!ready) throw new Error("the grammar matcher was used before its first mask");
    return ready;
  };
  void matcher.then((m) => {
    ready = m;
    if (freed) m.dispose();
  }, () => {});
  return {
    async nextMask() {
      const m = await matcher;
      return m.getNextTokenBitmask();
    },
    accept(id) {
      return use().acceptToken(id);
    },
    rollback(n) {
      if (n > 0) use().rollBack(n);
    },
    terminated() {
      return use().isTerminated();
    },
    free() {
      if (freed) return;
      freed = true;
      ready?.dispose();
    },
  };
}

/** XGrammar's C++ exceptions reach JS as numbers (pointers) or Errors; say something readable. */
function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === "string" ? err : "XGrammar rejected it (unsupported or invalid JSON schema)";
}
