/**
 * deploy/k8s/ and the Dockerfile, checked offline (no cluster, no docker engine here): every manifest
 * validates against the Kubernetes (kubernetes-models) or KEDA (@kubernetes-models/keda) OpenAPI schema,
 * the pieces fit together (selectors, port names, probe routes the server has, flags `serve` accepts, the
 * metric KEDA queries is one the server exports), and the memory request covers what
 * `qwen3-next info` says the 80B model needs for the configured concurrency.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import { Deployment } from "kubernetes-models/apps/v1";
import { Service } from "kubernetes-models/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ServerMetrics } from "../../src/server/metrics.js";
import { ROOT, runCli } from "../helpers/cli.js";

const read = (f: string) => parse(readFileSync(path.join(ROOT, "deploy/k8s", f), "utf8"));
const deployment = new Deployment(read("deployment.yaml"));
const service = new Service(read("service.yaml"));
const pdb = new PodDisruptionBudget(read("pdb.yaml"));
const scaled = new ScaledObject(read("keda-scaledobject.yaml"));
const container = deployment.spec!.template.spec!.containers[0];
const arg = (name: string) => container.args!.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];

/** "170Gi" -> bytes (binary suffixes only, as the manifests use). */
function quantity(q: string | number): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti)?$/.exec(String(q));
  if (!m) throw new Error(`unexpected quantity ${q}`);
  return Number(m[1]) * 1024 ** ["", "Ki", "Mi", "Gi", "Ti"].indexOf(m[2] ?? "");
}

describe("deploy/k8s manifests", () => {
  it("validate against the Kubernetes and KEDA schemas", () => {
    for (const m of [deployment, service, pdb, scaled]) expect(() => m.validate()).not.toThrow();
  });

  it("fit together: selectors, the named port, the scale target", () => {
    const podLabels = deployment.spec!.template.metadata!.labels!;
    expect(deployment.spec!.selector.matchLabels).toEqual(podLabels);
    for (const [k, v] of Object.entries(service.spec!.selector!)) expect(podLabels[k]).toBe(v);
    for (const [k, v] of Object.entries(pdb.spec!.selector!.matchLabels!)) expect(podLabels[k]).toBe(v);
    expect(container.ports!.map((p) => p.name)).toContain(service.spec!.ports![0].targetPort);
    expect(scaled.spec.scaleTargetRef.name).toBe(deployment.metadata!.name);
  });

  it("probe the server's routes: startup and liveness /health, readiness /ready", () => {
    expect(container.startupProbe?.httpGet?.path).toBe("/health");
    expect(container.livenessProbe?.httpGet?.path).toBe("/health");
    expect(container.readinessProbe?.httpGet?.path).toBe("/ready");
    // The drain: readiness must be able to turn false before the listener closes.
    expect(Number(arg("drain-delay"))).toBeGreaterThanOrEqual(container.readinessProbe!.periodSeconds! * container.readinessProbe!.failureThreshold!);
    expect(deployment.spec!.template.spec!.terminationGracePeriodSeconds).toBeGreaterThan(Number(arg("drain-delay")) + Number(arg("grace")));
  });

  it("pass only flags that `qwen3-next serve` accepts", async () => {
    const help = (await runCli(["serve", "--help"])).stdout;
    for (const a of container.args!) expect(help).toContain(a.split("=")[0]);
  });

  it("scale on vllm:num_requests_waiting, a metric the server exports", async () => {
    const query = scaled.spec.triggers[0].metadata.query as string;
    expect(query).toContain("vllm:num_requests_waiting");
    const names = (await new ServerMetrics("m", () => ({ active: 0, queued: 0 }) as never).registry.getMetricsAsJSON()).map((m) => m.name);
    expect(names).toContain("vllm:num_requests_waiting");
    expect(query).toContain(`model_name="${arg("served-model-name")}"`);
  });

  it("request at least the memory `qwen3-next info` gives for the 80B weights plus --max-concurrency sequences of 32k tokens", async () => {
    const config = path.join(ROOT, "test/fixtures/published/Qwen3-Next-80B-A3B-Instruct.config.json");
    const r = await runCli(["info", "--config", config, "--context", "32768", "--json"]);
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout) as { weights: { bytes: number }; state: { float32: { total: number } } };
    const needed = info.weights.bytes + Number(arg("max-concurrency")) * info.state.float32.total;
    const requested = quantity(container.resources!.requests!.memory as string);
    expect(requested).toBeGreaterThanOrEqual(needed);
    expect(quantity(container.resources!.limits!.memory as string)).toBeGreaterThanOrEqual(requested);
    expect(requested).toBeLessThan(needed * 1.15); // sized from it, not a guess far above
  });
});

describe("Dockerfile", () => {
  const lines = readFileSync(path.join(ROOT, "Dockerfile"), "utf8").split("\n").filter((l) => !l.startsWith("#"));
  it("is multi-stage, runs as non-root, mounts the model as a volume and starts `serve`", () => {
    expect(lines.filter((l) => l.startsWith("FROM ")).length).toBeGreaterThanOrEqual(2);
    const user = lines.filter((l) => l.startsWith("USER ")).at(-1);
    expect(user).toBeDefined();
    expect(user).not.toMatch(/USER (root|0)\b/);
    expect(lines.some((l) => l.startsWith("VOLUME ") && l.includes("/models"))).toBe(true);
    const entry = lines.find((l) => l.startsWith("ENTRYPOINT "))!;
    expect(JSON.parse(entry.slice("ENTRYPOINT ".length))).toEqual(expect.arrayContaining(["bin/qwen3-next.js", "serve"]));
    // The runtime stage's user matches the pod's securityContext.
    expect(user).toContain(String(deployment.spec!.template.spec!.securityContext!.runAsUser));
  });
});
