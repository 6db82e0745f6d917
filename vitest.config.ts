import { configDefaults, defineConfig } from "vitest/config";

/**
 * The WASM kernel tests run twice, once per kernel build (src/kernels/wasm/simd.ts): plain SIMD and relaxed
 * SIMD, forced with QWEN3_NEXT_SIMD. Everything else runs once, with the build `auto` picks.
 */
const WASM_TESTS = ["test/wasm/**/*.test.ts"];

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    projects: [
      { extends: true, test: { name: "main", include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, ...WASM_TESTS] } },
      { extends: true, test: { name: "wasm-plain", include: WASM_TESTS, env: { QWEN3_NEXT_SIMD: "plain" } } },
      { extends: true, test: { name: "wasm-relaxed", include: WASM_TESTS, env: { QWEN3_NEXT_SIMD: "relaxed" } } },
    ],
  },
});
