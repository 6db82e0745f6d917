/**
 * JSON schemas of the request bodies, checked by Fastify's validator (ajv) before a handler runs.
 * Types and ranges follow the OpenAI API reference (and vLLM's extensions: top_k, min_p,
 * repetition_penalty, chat_template_kwargs). Anything the schema cannot say (model name, prompt
 * length against the context) is checked in `requests.ts`.
 */

const num = (minimum: number, maximum: number) => ({ type: "number", minimum, maximum });
/** The schema, or null (OpenAI clients send null for "not set"). */
const nullable = (schema: Record<string, unknown>) =>
  typeof schema.type === "string" ? { ...schema, type: [schema.type, "null"] } : { anyOf: [{ type: "null" }, schema] };

/** Sampling fields shared by both completion endpoints. */
const sampling = {
  model: { type: "string", minLength: 1 },
  temperature: nullable(num(0, 2)),
  top_p: nullable({ type: "number", exclusiveMinimum: 0, maximum: 1 }),
  top_k: nullable({ type: "integer", minimum: -1 }),
  min_p: nullable(num(0, 1)),
  presence_penalty: nullable(num(-2, 2)),
  frequency_penalty: nullable(num(-2, 2)),
  repetition_penalty: nullable({ type: "number", exclusiveMinimum: 0 }),
  max_tokens: nullable({ type: "integer", minimum: 1 }),
  seed: nullable({ type: "integer", minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }),
  stop: nullable({
    anyOf: [
      { type: "string", minLength: 1 },
      { type: "array", maxItems: 16, items: { type: "string", minLength: 1 } },
    ],
  }),
  n: nullable({ type: "integer", minimum: 1, maximum: 16 }),
  stream: nullable({ type: "boolean" }),
  stream_options: nullable({
    type: "object",
    properties: { include_usage: nullable({ type: "boolean" }) },
  }),
  logit_bias: nullable({
    type: "object",
    propertyNames: { pattern: "^[0-9]+$" },
    additionalProperties: num(-100, 100),
  }),
  user: { type: "string" },
  // Speculative decoding: draft tokens per step, at most the server's --draft-tokens (0: none).
  num_speculative_tokens: nullable({ type: "integer", minimum: 0 }),
  // json_object and json_schema are generated under a grammar (src/server/grammar/).
  response_format: nullable({
    type: "object",
    required: ["type"],
    properties: {
      type: { enum: ["text", "json_object", "json_schema"] },
      json_schema: {
        type: "object",
        required: ["name"],
        properties: {
          name: { type: "string", minLength: 1, maxLength: 64 },
          description: { type: "string" },
          schema: { type: "object" },
          strict: nullable({ type: "boolean" }),
        },
      },
    },
    if: { properties: { type: { const: "json_schema" } } },
    then: { required: ["json_schema"] },
  }),
} as const;

const textPart = {
  type: "object",
  required: ["type", "text"],
  properties: { type: { const: "text" }, text: { type: "string" } },
};

const toolCall = {
  type: "object",
  required: ["type", "function"],
  properties: {
    id: { type: "string" },
    type: { const: "function" },
    function: {
      type: "object",
      required: ["name", "arguments"],
      properties: { name: { type: "string", minLength: 1 }, arguments: { type: ["string", "object"] } },
    },
  },
};

const message = {
  type: "object",
  required: ["role"],
  properties: {
    role: { enum: ["system", "developer", "user", "assistant", "tool"] },
    content: { anyOf: [{ type: "null" }, { type: "string" }, { type: "array", items: textPart }] },
    reasoning_content: nullable({ type: "string" }),
    reasoning: nullable({ type: "string" }),
    name: { type: "string" },
    tool_calls: nullable({ type: "array", items: toolCall }),
    tool_call_id: { type: "string" },
  },
};

const tool = {
  type: "object",
  required: ["type", "function"],
  properties: {
    type: { const: "function" },
    function: {
      type: "object",
      required: ["name"],
      properties: {
        name: { type: "string", minLength: 1, maxLength: 64 },
        description: { type: "string" },
        parameters: { type: "object" },
      },
    },
  },
};

export const chatCompletionSchema = {
  type: "object",
  required: ["model", "messages"],
  properties: {
    ...sampling,
    max_completion_tokens: nullable({ type: "integer", minimum: 1 }),
    messages: { type: "array", minItems: 1, items: message },
    tools: nullable({ type: "array", items: tool }),
    tool_choice: nullable({
      anyOf: [
        { enum: ["none", "auto", "required"] },
        {
          type: "object",
          required: ["type", "function"],
          properties: {
            type: { const: "function" },
            function: { type: "object", required: ["name"], properties: { name: { type: "string" } } },
          },
        },
      ],
    }),
    parallel_tool_calls: nullable({ type: "boolean" }),
    logprobs: nullable({ type: "boolean" }),
    top_logprobs: nullable({ type: "integer", minimum: 0, maximum: 20 }),
    chat_template_kwargs: nullable({
      type: "object",
      properties: { enable_thinking: nullable({ type: "boolean" }) },
    }),
  },
} as const;

export const completionSchema = {
  type: "object",
  required: ["model", "prompt"],
  properties: {
    ...sampling,
    prompt: {
      anyOf: [
        { type: "string" },
        { type: "array", minItems: 1, maxItems: 1, items: { type: "string" } },
        { type: "array", minItems: 1, items: { type: "integer", minimum: 0 } },
        { type: "array", minItems: 1, maxItems: 1, items: { type: "array", minItems: 1, items: { type: "integer", minimum: 0 } } },
      ],
    },
    echo: nullable({ type: "boolean" }),
    logprobs: nullable({ type: "integer", minimum: 0, maximum: 20 }),
  },
} as const;
