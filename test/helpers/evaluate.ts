// Events through the engine with the given rules, nothing enforced (seq assigned in order): what the live
// tests ask of the bundled rules about the events their own processes made.
import type { KrsiEvent } from '../../signals/events.ts';
import type { Output } from '../../engine/types.ts';
import type { CompiledRuleSet } from '../../engine/rules/types.ts';

export async function evaluate(events: KrsiEvent[], rules: CompiledRuleSet): Promise<Output[]> {
  const { Engine } = await import('../../engine/engine.ts');
  const { unenforced } = await import('../../engine/enforcement/enforcement.ts');
  const engine = new Engine({ rules, enforcement: unenforced() });
  const out: Output[] = [];
  events.forEach((e, i) => engine.push({ ...e, seq: i + 1 }, (o) => out.push(o)));
  engine.finish((o) => out.push(o));
  return out;
}
