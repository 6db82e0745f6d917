#!/usr/bin/env node
// The installed CLI runs the compiled sources (built by `npm install` through the `prepare` script).
// simd.js first: it switches relaxed SIMD on (a V8 flag in Node 20) before anything compiles the kernels.
import "../dist/kernels/wasm/simd.js";
import "../dist/cli/bin.js";
