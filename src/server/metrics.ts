/**
 * GET /metrics: Prometheus text exposition (prom-client) under vLLM's metric names, so that vLLM's
 * Grafana dashboards, alerts and KEDA/HPA triggers work unchanged. Every series has vLLM's `model_name`
 * label. Counters carry the `_total` suffix that vLLM's Python client appends to them.
 *
 *   vllm:num_requests_running / vllm:num_requests_waiting    gauges (read from the scheduler on scrape)
 *   vllm:time_to_first_token_seconds, vllm:e2e_request_latency_seconds   histograms
 *   vllm:prompt_tokens_total, vllm:generation_tokens_total, vllm:request_success_total{finished_reason}
 *   vllm:prefix_cache_queries_total / vllm:prefix_cache_hits_total   prompt tokens looked up / found
 *   vllm:spec_decode_num_drafts_total, vllm:spec_decode_num_draft_tokens_total,
 *   vllm:spec_decode_num_accepted_tokens_total   (fed by `specDecode()`: the hook for MTP drafting)
 *   qwen3_next:response_cache_lookups_total / _hits_total   the --response-cache
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { GenerationObserver } from "./generation.js";
import type { SchedulerStats } from "./scheduler.js";

const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];

export class ServerMetrics implements GenerationObserver {
  readonly registry = new Registry();
  private readonly labels: { model_name: string };
  private readonly ttft: Histogram<"model_name">;
  private readonly e2e: Histogram<"model_name">;
  private readonly promptTokens: Counter<"model_name">;
  private readonly generationTokens: Counter<"model_name">;
  private readonly success: Counter<"model_name" | "finished_reason">;
  private readonly drafts: Counter<"model_name">;
  private readonly draftTokens: Counter<"model_name">;
  private readonly acceptedTokens: Counter<"model_name">;
  private readonly cacheLookups: Counter<"model_name">;
  private readonly cacheHits: Counter<"model_name">;

  constructor(modelName: string, stats: () => SchedulerStats) {
    this.labels = { model_name: modelName };
    const registers = [this.registry];
    const labelNames = ["model_name"] as const;
    const labels = this.labels;
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames, registers });
    new Gauge({
      name: "vllm:num_requests_running",
      help: "Number of requests in model execution batches.",
      labelNames,
      registers,
      collect() {
        this.set(labels, stats().active);
      },
    });
    new Gauge({
      name: "vllm:num_requests_waiting",
      help: "Number of requests waiting to be processed.",
      labelNames,
      registers,
      collect() {
        this.set(labels, stats().queued);
      },
    });
    // The scheduler counts prefix-cache tokens; the counters follow its totals on each scrape.
    let seen = { queries: 0, hits: 0 };
    const queries = new Counter({
      name: "vllm:prefix_cache_queries_total",
      help: "Prefix cache queries, in terms of number of queried tokens.",
      labelNames,
      registers,
      collect() {
        const s = stats();
        this.inc(labels, s.prefixCacheQueryTokens - seen.queries);
        hits.inc(labels, s.prefixCacheHitTokens - seen.hits);
        seen = { queries: s.prefixCacheQueryTokens, hits: s.prefixCacheHitTokens };
      },
    });
    const hits = counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.");
    queries.inc(labels, 0);
    hits.inc(labels, 0);
    this.ttft = new Histogram({ name: "vllm:time_to_first_token_seconds", help: "Histogram of time to first token in seconds.", labelNames, registers, buckets: LATENCY_BUCKETS });
    this.e2e = new Histogram({ name: "vllm:e2e_request_latency_seconds", help: "Histogram of end to end request latency in seconds.", labelNames, registers, buckets: LATENCY_BUCKETS });
    this.promptTokens = counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.");
    this.generationTokens = counter("vllm:generation_tokens_total", "Number of generation tokens processed.");
    this.success = new Counter({ name: "vllm:request_success_total", help: "Count of successfully processed requests.", labelNames: ["model_name", "finished_reason"], registers });
    this.drafts = counter("vllm:spec_decode_num_drafts_total", "Number of spec decoding drafts.");
    this.draftTokens = counter("vllm:spec_decode_num_draft_tokens_total", "Number of draft tokens.");
    this.acceptedTokens = counter("vllm:spec_decode_num_accepted_tokens_total", "Number of accepted tokens.");
    this.cacheLookups = counter("qwen3_next:response_cache_lookups_total", "Deterministic requests looked up in the --response-cache.");
    this.cacheHits = counter("qwen3_next:response_cache_hits_total", "Requests answered from the --response-cache.");
    for (const c of [this.promptTokens, this.generationTokens, this.drafts, this.draftTokens, this.acceptedTokens, this.cacheLookups, this.cacheHits]) {
      c.inc(this.labels, 0); // present (at 0) from the start, so rate() has a first sample
    }
  }

  firstToken(seconds: number): void {
    this.ttft.observe(this.labels, seconds);
  }

  finished(r: { seconds: number; promptTokens: number; completionTokens: number; finishReason?: string }): void {
    this.e2e.observe(this.labels, r.seconds);
    this.promptTokens.inc(this.labels, r.promptTokens);
    this.generationTokens.inc(this.labels, r.completionTokens);
    this.success.inc({ ...this.labels, finished_reason: r.finishReason ?? "stop" });
  }

  /**
   * Speculative decoding (the hook for MTP drafting): one verification step that proposed `draftTokens`
   * tokens, of which `acceptedTokens` were accepted. Acceptance rate = accepted / draft tokens.
   */
  specDecode(draftTokens: number, acceptedTokens: number): void {
    this.drafts.inc(this.labels, 1);
    this.draftTokens.inc(this.labels, draftTokens);
    this.acceptedTokens.inc(this.labels, acceptedTokens);
  }

  responseCache(hit: boolean): void {
    this.cacheLookups.inc(this.labels, 1);
    if (hit) this.cacheHits.inc(this.labels, 1);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
