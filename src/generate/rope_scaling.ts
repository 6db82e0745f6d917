/**
 * vLLM-style `--rope-scaling '{"rope_type":"yarn","factor":4,"original_max_position_embeddings":262144}'`:
 * replaces a checkpoint's RoPE scaling (its base theta and partial rotary factor are kept), validated by the
 * same parser as config.json.
 */
import { parseConfig, type RopeConfig } from "../config.js";

/** The RoPE setup of `rawConfig` (a config.json object) with its scaling replaced by the JSON text `flag`. */
export function ropeWithScaling(rawConfig: unknown, flag: string): RopeConfig {
  let scaling: unknown;
  try {
    scaling = JSON.parse(flag);
  } catch {
    throw new Error(`--rope-scaling is not JSON: ${flag}; expected e.g. '{"rope_type":"yarn","factor":4,"original_max_position_embeddings":262144}'`);
  }
  if (typeof scaling !== "object" || scaling === null || Array.isArray(scaling)) {
    throw new Error(`--rope-scaling must be a JSON object, got ${flag}`);
  }
  const base = parseConfig(rawConfig).rope;
  const raw = rawConfig as Record<string, unknown>;
  return parseConfig(
    {
      ...raw,
      rope_parameters: null,
      rope_theta: base.rope_theta,
      partial_rotary_factor: base.partial_rotary_factor,
      rope_scaling: scaling,
    },
    "--rope-scaling",
  ).rope;
}
