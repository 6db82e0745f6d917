/**
 * The API key cannot be bypassed by spelling the path differently: the check is made on the route a request
 * was matched to, so percent-encoding, dot segments, double slashes and absolute-form targets all meet it.
 * Requests go over raw sockets so that the target reaches the server unnormalised.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveApiKey } from "../../src/cli/serve.js";
import { exposureWarning } from "../../src/server/start.js";
import { startTestServer, type TestServer } from "./harness.js";
import { rawRequest } from "./raw_http.js";

const KEY = "s3cret-key";
let t: TestServer;
let host: string;
beforeAll(async () => {
  t = await startTestServer({ apiKey: KEY, defaultMaxTokens: 2 });
  host = new URL(t.url).host;
});
afterAll(async () => {
  await t?.server.close(1000);
});

const get = (target: string, auth = false) =>
  rawRequest(t.url, `GET ${target} HTTP/1.1\r\nhost: ${host}${auth ? `\r\nauthorization: Bearer ${KEY}` : ""}`);
const chatBody = () => JSON.stringify({ model: t.model, messages: [{ role: "user", content: "Hi" }], max_tokens: 1 });
const post = (target: string, auth = false) =>
  rawRequest(t.url, `POST ${target} HTTP/1.1\r\nhost: ${host}${auth ? `\r\nauthorization: Bearer ${KEY}` : ""}`, chatBody());

describe("server: the API key", () => {
  // Spellings of /v1/models and /v1/chat/completions a router may resolve to the real route.
  const modelSpellings = () => [
    "/v1/models",
    "/v%31/models",
    "/%76%31/models",
    "/v1/%6dodels",
    "//v1/models",
    "/v1//models",
    "/v1/./models",
    "/x/../v1/models",
    "/v1/models?x=1",
    "/v1/models#frag",
    `http://${host}/v1/models`,
    `http://${host}/v%31/models`,
    "/V1/MODELS",
    "/v1/models/",
    "/v1/models/..%2fmodels",
    "*",
  ];

  it("refuses every spelling of a /v1 route without the key (401), and the routed ones serve with it", async () => {
    let served = 0;
    for (const target of modelSpellings()) {
      const without = await get(target);
      expect([target, without.status]).toEqual([target, 401]);
      expect(JSON.parse(without.body).error.type).toBe("authentication_error");
      const withKey = await get(target, true);
      expect(withKey.status).not.toBe(401);
      if (withKey.status === 200) served++;
    }
    // The plain spelling and at least the encoded/absolute-form ones do route: the check is not vacuous.
    expect(served).toBeGreaterThanOrEqual(3);
  });

  it("refuses generation without the key whatever the spelling", async () => {
    for (const target of ["/v1/chat/completions", "/v%31/chat/completions", "/v1/chat/%63ompletions", "//v1/chat/completions", `http://${host}/v1/chat/completions`, "/v1/x/../chat/completions"]) {
      const r = await post(target);
      expect([target, r.status]).toEqual([target, 401]);
    }
    const ok = await post("/v%31/chat/completions", true);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).object).toBe("chat.completion");
  });

  it("refuses a wrong key and a key without the Bearer scheme", async () => {
    for (const auth of [`Bearer ${KEY}x`, KEY, `bearer ${KEY}`, `Bearer  ${KEY}`, ""]) {
      const r = await rawRequest(t.url, `GET /v1/models HTTP/1.1\r\nhost: ${host}\r\nauthorization: ${auth}`);
      expect(r.status).toBe(401);
    }
  });

  it("leaves only GET /health open, and unknown routes need the key too", async () => {
    expect((await get("/health")).status).toBe(200);
    expect((await get("/nope")).status).toBe(401);
    expect((await get("/nope", true)).status).toBe(404);
    const r = await rawRequest(t.url, `POST /health HTTP/1.1\r\nhost: ${host}`, "{}");
    expect(r.status).toBe(401);
  });

  it("takes the key from --api-key, a file, $QWEN3_NEXT_API_KEY or $VLLM_API_KEY, in that order", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "qwen3-next-key-"));
    const file = path.join(dir, "key");
    await writeFile(file, "from-file\n");
    const env = { QWEN3_NEXT_API_KEY: "from-env", VLLM_API_KEY: "from-vllm" };
    expect(resolveApiKey({ apiKey: "flag" }, env)).toBe("flag");
    expect(resolveApiKey({ apiKeyFile: file }, env)).toBe("from-file");
    expect(resolveApiKey({}, env)).toBe("from-env");
    expect(resolveApiKey({}, { VLLM_API_KEY: "from-vllm" })).toBe("from-vllm");
    expect(resolveApiKey({}, {})).toBeUndefined();
    expect(() => resolveApiKey({ apiKey: "a", apiKeyFile: file }, {})).toThrow(/not both/);
    await writeFile(file, "\n");
    expect(() => resolveApiKey({ apiKeyFile: file }, {})).toThrow(/first line is empty/);
    expect(() => resolveApiKey({ apiKeyFile: path.join(dir, "missing") }, {})).toThrow(/cannot read \(ENOENT\)/);
  });

  it("warns when listening beyond loopback without a key", () => {
    for (const h of ["127.0.0.1", "localhost", "::1", "127.1.2.3"]) expect(exposureWarning(h, undefined)).toBeUndefined();
    for (const h of ["0.0.0.0", "::", "192.168.1.5", "example.com"]) expect(exposureWarning(h, undefined)).toMatch(/without an API key/);
    expect(exposureWarning("0.0.0.0", "k")).toBeUndefined();
  });
});
