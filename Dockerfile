# qwen3-next serve: the OpenAI-compatible server in a container.
#
#   docker build -t qwen3-next-ts .
#   docker run --rm -p 8000:8000 -v /path/to/Qwen3-Next-80B-A3B-Instruct:/models/model:ro qwen3-next-ts
#
# The checkpoint is mounted as a volume at /models/model (never baked into the image). Without a mounted
# checkpoint, `--model` can be dropped from the command to serve the random-weight demo (made at start-up
# under $QWEN3_NEXT_CACHE, a writable emptyDir/tmp).

# --- build: TypeScript -> dist/, AssemblyScript -> build/kernels.wasm + kernels-relaxed.wasm (needs the dev dependencies) ---
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json asconfig.json ./
COPY asm ./asm
COPY src ./src
COPY bin ./bin
# `npm ci` runs the `prepare` script, which builds dist/ and both WASM kernel builds.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund

# --- runtime: production dependencies and the build output only, as a non-root user ---
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    QWEN3_NEXT_CACHE=/tmp/qwen3-next-cache
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json ./package.json
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --from=build --chown=root:root /app/build/kernels.wasm /app/build/kernels-relaxed.wasm ./build/
COPY --from=build --chown=root:root /app/bin ./bin
# The image's `node` user (uid 1000); the app files stay root-owned and read-only to it.
USER 1000:1000
VOLUME ["/models"]
EXPOSE 8000
# Liveness without curl in the image: /health answers while the process serves.
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8000/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "bin/qwen3-next.js", "serve", "--host", "0.0.0.0", "--port", "8000"]
CMD ["--model", "/models/model"]
