/**
 * qwen3-next-ts as a library. Others append their exports at the end (one block per area).
 *
 *   const model = await loadModel("path/to/checkpoint", { precision: "f64" });
 *   const state = model.newState();
 *   const logits = await model.forward([9707, 1879], state);          // [T, vocab]
 *   const next = await model.forward([11], state, { lastOnly: true }); // [vocab], continuing the sequence
 */

// Configuration
export { parseConfig, rotaryDim, isMoeLayer, ConfigError, contextLimit, ropeWithScaling } from "./config.js";
export type { Qwen3NextConfig, RopeConfig, LayerType } from "./config.js";

// Kernels (TypeScript reference or WASM SIMD behind one interface)
export { createKernels } from "./kernels/index.js";
export { createTsKernels } from "./kernels/ts/index.js";
export { opaque } from "./kernels/types.js";
export type {
  Kernels,
  KernelsOf,
  HostKernels,
  Tensor,
  IndexTensor,
  Residual,
  MoeExpertsArgs,
  KernelOptions,
  Backend,
  Precision,
  Vec,
  Weight,
  WeightDType,
  AttentionArgs,
  CausalConv1dArgs,
  DeltaRuleArgs,
  RouterArgs,
} from "./kernels/types.js";
// The delta rule, recurrent and chunked; the router (usable on plain Float64Arrays / Float32Arrays)
export { deltaRuleRecurrent, deltaRuleChunked } from "./kernels/ts/delta_rule.js";
export { router } from "./kernels/ts/router.js";

// The model
export { loadModel } from "./model/load.js";
export type { LoadModelOptions } from "./model/load.js";
export { Qwen3NextForCausalLM, qwen3NextParams, listParams } from "./model/qwen3_next_for_causal_lm.js";
export type { ForwardOptions, Qwen3NextParams } from "./model/qwen3_next_for_causal_lm.js";
export { recordParams, weightParams } from "./model/params.js";
export type { ParamDecl, Params } from "./model/params.js";
export { SequenceState, KVCache, DeltaNetState } from "./model/state.js";
export type { WeightSource } from "./model/weights.js";
// RoPE: inverse frequencies (default, linear, YaRN) and cos/sin
export {
  ropeInvFreq,
  ropeAttentionScaling,
  yarnBounds,
  Qwen3NextRotaryEmbedding,
} from "./model/rotary_embedding.js";
// Tracing intermediates
export { Trace } from "./model/trace.js";
export type { TracedTensor, TraceKind } from "./model/trace.js";
export { traceTokens } from "./model/trace_run.js";
export { traceTensors, writeTraceDump } from "./io/trace_dump.js";
export type { DumpTensor, TraceDump } from "./io/trace_dump.js";
export type { TraceRun } from "./model/trace_run.js";

// Safetensors, checkpoints, parameter counts, dump comparison
export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, bf16ArrayToF32, f16ArrayToF32, f32ArrayToBf16, f32ArrayToF16, toFloat64 } from "./io/dtype.js";
export type { SafetensorsDType } from "./io/dtype.js";
export { SafetensorsFile, SafetensorsError, readSafetensors, readSafetensorsHeader, writeSafetensors } from "./io/safetensors.js";
export type { SafetensorsTensor, SafetensorsHeader, TensorInfo, TensorToWrite } from "./io/safetensors.js";
export { loadCheckpoint, planCheckpoint, readConfigFile, typedArrayAllocator } from "./loading/checkpoint.js";
export type { LoadedCheckpoint, LoadOptions, WeightAllocator } from "./loading/checkpoint.js";
export { expectedTensors } from "./loading/expected.js";
export { QWEN3_NEXT_SAFETENSORS, QWEN3_5_SAFETENSORS, safetensorsLayout, STORED_ONE_PLUS_W, STORED_NEG_EXP } from "./loading/layout.js";
export type { CheckpointLayout, Spelling, StoredTransform } from "./loading/layout.js";
export { planWeights, readWeights, CheckpointError } from "./loading/plan.js";
export type { PlannedWeight, StoredTensor, TensorStore, WeightsPlan } from "./loading/plan.js";
export { countParameters, weightBytes, sequenceStateBytes } from "./loading/parameters.js";
export type { ParameterCounts, SequenceStateBytes } from "./loading/parameters.js";
export { compareFiles, compareValues } from "./io/compare-dumps.js";
export { NameMap } from "./io/name_map.js";
export type { CompareReport, TensorComparison, Tolerance } from "./io/compare-dumps.js";

// Text in, text out: tokenizer, chat template, output parsing, sampling, generation, random checkpoints
export { QwenTokenizer, StreamDecoder, bundledTokenizerDir } from "./tokenizer/tokenizer.js";
export { ChatTemplate, promptOpensThinking } from "./tokenizer/chat_template.js";
export type { ChatMessage, ToolSpec, RenderOptions } from "./tokenizer/chat_template.js";
export { parseAssistantOutput, StreamingOutputParser } from "./generate/output_parser.js";
export { parseToolCalls, parseHermesToolCalls, parseXmlToolCalls } from "./generate/tool_call_parsers.js";
export { thinkingSwitch } from "./tokenizer/thinking_mode.js";
export type { ThinkingSwitch } from "./tokenizer/thinking_mode.js";
export type { ParsedOutput, OutputDelta, ToolCall } from "./generate/output_parser.js";
export { Sampler, defaultSamplingParams, samplingParamsError, QWEN3_NEXT_INSTRUCT_SAMPLING } from "./generate/sampler.js";
export type { SamplingParams } from "./generate/sampler.js";
export { Xoshiro128 } from "./prng.js";
export { generate, checkPromptLength } from "./generate/generate.js";
export { StopStringText } from "./generate/stop_strings.js";
export type { GenerateOptions, GenerateEvent, GenerateResult, Generation, CausalLM, Continuation } from "./generate/generate.js";
export { writeRandomCheckpoint } from "./init/random_checkpoint.js";
export { ensureDemoCheckpoint, DEMO_CONFIG, cacheRoot } from "./init/demo.js";

// The OpenAI-compatible server: HTTP app, continuous-batching scheduler, prompt-prefix cache
export { startServer, DEMO_MODEL_NAME } from "./server/start.js";
export type { ServeOptions, ServedSession, RunningServer } from "./server/start.js";
export { buildApp } from "./server/app.js";
export type { ServerDeps, AppOptions } from "./server/app.js";
export { Scheduler } from "./server/scheduler.js";
export type { DecodeModel, SchedulerOptions, SchedulerStats, SequenceRequest } from "./server/scheduler.js";
export { PrefixCache } from "./server/prefix_cache.js";
export { ApiError } from "./server/errors.js";

// GGUF (llama.cpp files): reader and writer, config, layout and tokenizer from a file's metadata, model paths
export { GgufFile, GgufError, GgufType, readGgufHeader, parseGgufHeader } from "./io/gguf.js";
export type { GgufHeader, GgufTensorInfo, GgufMetadataEntry, GgufValue } from "./io/gguf.js";
export { writeGguf, writeGgufStreamed, encodeGgufHeader, meta as ggufMeta } from "./io/gguf_write.js";
export { dequantizeRow, quantizeRow, quantBlock, quantRowBytes, isQuantDType, QUANT_DTYPES } from "./io/ggml_quants.js";
export { chooseTensorTypes, ggufTensorOrder, FILE_TYPES } from "./io/gguf_tensor_types.js";
export type { FileType } from "./io/gguf_tensor_types.js";
export { checkpointToGguf } from "./loading/to_gguf.js";
export type { GgufMetaToWrite, GgufTensorToWrite } from "./io/gguf_write.js";
export { configFromGguf, rawConfigFromGguf } from "./loading/gguf_config.js";
export { GGUF_QWEN3NEXT } from "./loading/gguf_layout.js";
export { tokenizerFromGguf } from "./tokenizer/gguf_tokenizer.js";
export { locateModel } from "./loading/model_path.js";
export type { ModelLocation } from "./loading/model_path.js";
export { bytesPerToken } from "./loading/bytes_per_token.js";
