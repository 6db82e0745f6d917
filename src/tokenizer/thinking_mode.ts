/**
 * What a chat template does with `enable_thinking`, found by rendering a probe conversation both ways:
 *   switchable  the flag changes the prompt (Qwen3 hybrid templates: false pre-fills an empty think block)
 *   always      no switch, and the prompt opens `<think>` (Qwen3-Next-Thinking)
 *   never       no switch, and no reasoning is opened (Qwen3-Next-Instruct)
 */
import { promptOpensThinking, type ChatTemplate } from "./chat_template.js";

export type ThinkingSwitch = "switchable" | "always" | "never";

export function thinkingSwitch(template: ChatTemplate): ThinkingSwitch {
  const probe = [{ role: "user" as const, content: "hi" }];
  const on = template.render(probe, { enableThinking: true });
  const off = template.render(probe, { enableThinking: false });
  if (on !== off) return "switchable";
  return promptOpensThinking(template.render(probe)) ? "always" : "never";
}

/** One line for users who asked for a thinking mode the template cannot switch to, or null when it can. */
export function noSwitchNotice(sw: ThinkingSwitch, asked: string): string | null {
  if (sw === "switchable") return null;
  return `${asked} changes nothing: this chat template has no thinking switch (the model ${sw === "always" ? "always thinks" : "does not think"})`;
}
