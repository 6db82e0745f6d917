/**
 * Loads XGrammar (`@mlc-ai/web-xgrammar`: the C++ library compiled to WASM by emscripten) in Node.
 *
 * The package ships one UMD bundle in a `"type": "module"` package, so Node's ESM loader sees no exports
 * and its emscripten prelude calls `require`/`__filename`, which ESM lacks. Evaluating the bundle as the
 * CommonJS module it is written as (its `exports`, `module`, `require`, `__filename`) gives the real API.
 * Its one dynamic `import('module')` is answered with Node's module API (a Function body has no
 * dynamic-import callback inside vitest's module runner).
 */
import { readFileSync } from "node:fs";
import * as nodeModule from "node:module";
import { createRequire } from "node:module";
import path from "node:path";
import type * as XGrammarApi from "@mlc-ai/web-xgrammar";

export type XGrammar = typeof XGrammarApi;

let loaded: XGrammar | undefined;

export function xgrammar(): XGrammar {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const file = require.resolve("@mlc-ai/web-xgrammar");
  const mod = { exports: {} as Record<string, unknown> };
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const source = readFileSync(file, "utf8").replace("import('module')", "__importModule()");
  new Function("exports", "module", "require", "__filename", "__dirname", "__importModule", source)(
    mod.exports,
    mod,
    require,
    file,
    path.dirname(file),
    async () => nodeModule,
  );
  loaded = mod.exports as unknown as XGrammar;
  return loaded;
}
