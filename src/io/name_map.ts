/**
 * Renames another runtime's dump tensors to this project's names before `compare`, from a JSON object
 * `{ "their name": "our name" }`. A key may hold a layer placeholder `{i}`, `{i+N}` or `{i-N}` matching a number,
 * and the value `{i}` (or `{i+N}`, `{i-N}`) gets the layer; exact keys win over patterns. Names no key matches
 * are kept. Example, Hugging Face `output_hidden_states` of a 48-layer model saved as hidden_states.{0..48}:
 *   { "hidden_states.0": "embedding", "hidden_states.{i+1}": "hidden.{i}", "hidden_states.48": "final_hidden" }
 * (HF's entry i+1 is the output of layer i; its last entry is after the final norm, i.e. final_hidden.)
 */
export class NameMap {
  private readonly exact = new Map<string, string>();
  private readonly patterns: Array<{ re: RegExp; offset: number; to: string }> = [];

  constructor(raw: unknown, where = "the name map") {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error(`${where}: expected a JSON object of "their name": "our name"`);
    for (const [from, to] of Object.entries(raw)) {
      if (typeof to !== "string") throw new Error(`${where}: the value of ${JSON.stringify(from)} is not a string`);
      const slots = from.match(/\{i([+-]\d+)?\}/g) ?? [];
      if (slots.length === 0) {
        this.exact.set(from, to);
        continue;
      }
      if (slots.length > 1) throw new Error(`${where}: ${JSON.stringify(from)} has more than one {i}`);
      const slot = slots[0]!;
      const [head, tail] = [from.slice(0, from.indexOf(slot)), from.slice(from.indexOf(slot) + slot.length)];
      const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      const offset = Number(/\{i([+-]\d+)?\}/.exec(slot)![1] ?? 0);
      this.patterns.push({ re: new RegExp(`^${escape(head)}(\\d+)${escape(tail)}$`), offset, to });
    }
  }

  /** Our name for `name` (itself when nothing maps it). */
  map(name: string): string {
    const hit = this.exact.get(name);
    if (hit !== undefined) return hit;
    for (const p of this.patterns) {
      const m = p.re.exec(name);
      if (!m) continue;
      const i = Number(m[1]) - p.offset;
      if (i < 0) continue;
      return p.to.replace(/\{i([+-]\d+)?\}/g, (_s, d: string | undefined) => String(i + Number(d ?? 0)));
    }
    return name;
  }
}
