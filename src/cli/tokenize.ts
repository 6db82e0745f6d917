/**
 * `qwen3-next tokenize --text TEXT` prints the token ids, comma-separated (ready for `trace --tokens`);
 * `qwen3-next tokenize --decode 1,2,3` prints the text. `--model DIR` uses that checkpoint's tokenizer
 * (default: the bundled Qwen3 tokenizer); `--chat` wraps the text in the chat template first.
 */
import { Command } from "commander";
import { QwenTokenizer } from "../tokenizer/tokenizer.js";
import { ChatTemplate } from "../tokenizer/chat_template.js";
import { asUsageError, parseTokenIds, UsageError } from "./options.js";

interface TokenizeFlags {
  text?: string;
  decode?: string;
  model?: string;
  chat?: boolean;
  tokens?: boolean;
}

export function register(program: Command): void {
  program
    .command("tokenize")
    .description("text -> token ids (--text), or token ids -> text (--decode)")
    .option("--text <text>", "text to encode (special tokens such as <|im_start|> are recognised)")
    .option("--decode <ids>", "comma-separated token ids to decode")
    .option("-m, --model <dir>", "use this checkpoint's tokenizer (default: the bundled Qwen3 tokenizer)")
    .option("--chat", "with --text: render it as a user turn of the chat template first")
    .option("--tokens", "with --text: print one line per token: id and the token's text")
    .action(run);
}

async function run(o: TokenizeFlags): Promise<void> {
  if ((o.text === undefined) === (o.decode === undefined)) {
    throw new UsageError("give exactly one of --text TEXT or --decode IDS");
  }
  const tok = await QwenTokenizer.load(o.model);
  if (o.decode !== undefined) {
    process.stdout.write(tok.decode(parseIds(o.decode, tok.vocabSize)) + "\n");
    return;
  }
  const text = o.chat ? (await ChatTemplate.load(o.model)).render([{ role: "user", content: o.text! }]) : o.text!;
  const ids = tok.encode(text);
  if (o.tokens) {
    for (const id of ids) process.stdout.write(`${id}\t${JSON.stringify(tok.decode([id]))}\n`);
  } else {
    process.stdout.write(ids.join(",") + "\n");
  }
}

/** The --decode ids, each below the tokenizer's vocabulary size. */
function parseIds(list: string, vocabSize: number): number[] {
  const ids = asUsageError(() => parseTokenIds(list, "--decode"));
  const outside = ids.find((id) => id >= vocabSize);
  if (outside !== undefined) throw new Error(`--decode: token id ${outside} is out of range, expected integers in [0, ${vocabSize})`);
  return ids;
}
