#!/usr/bin/env node
// The installed CLI runs the compiled sources (built by `npm install` through the `prepare` script).
import "../dist/cli/bin.js";
