// `node bench/wasm_code.mjs FILE.wasm EXPORT [ARGS...]`: the x64 machine code TurboFan makes of one export of a
// WASM kernel file (Node's V8 has its disassembler: --print-wasm-code), to check what V8 does with a kernel's
// loop: spills (`vmovups [rbp-...]` stores and reloads), hoisted loads, address arithmetic, loop checks. The
// export is called once with the integer ARGS (e.g. pointers into a zeroed memory: `matmulBF16 1048576 2097152
// 4194304 8 64 256 0 64`) so that the function is compiled; nothing is checked. Count instructions with
// `| grep -o "  [a-z][a-z0-9]* " | sort | uniq -c`.
import { readFileSync } from "node:fs";
import v8 from "node:v8";
v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
v8.setFlagsFromString("--no-liftoff");
v8.setFlagsFromString("--print-wasm-code");
const [file, name, ...args] = process.argv.slice(2);
const bytes = readFileSync(file);
// The export's function index, from the binary's import and export sections (LEB128 fields).
let pos = 8;
const u32 = () => { let r = 0, s = 0, b; do { b = bytes[pos++]; r |= (b & 0x7f) << s; s += 7; } while (b & 0x80); return r >>> 0; };
const str = () => { const n = u32(); const t = bytes.subarray(pos, pos + n).toString(); pos += n; return t; };
let index = -1;
while (pos < bytes.length) {
  const id = bytes[pos++], size = u32(), end = pos + size;
  if (id === 7) for (let n = u32(), i = 0; i < n; i++) { const nm = str(), kind = bytes[pos++], idx = u32(); if (kind === 0 && nm === name) index = idx; }
  pos = end;
}
if (index < 0) { console.error(`no function export ${name} in ${file}`); process.exit(2); }
const memory = new WebAssembly.Memory({ initial: 256, maximum: 65536, shared: true });
const e = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory, abort() { throw new Error("abort"); } } }).exports;
console.error(`${name}: wasm-function[${index}]`);
e[name](...args.map(Number));
