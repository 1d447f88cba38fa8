// The differential check of a log recorded by `krsi run --mode enforce`: what the kernel denied (the
// log's `denied` events) against what the replay model denies on the same log. Recorded events go
// through the engine with the model; an exec or module load the kernel refused never happened, so its
// only record is the `denied` event: the model is asked about that attempt. A refused mprotect is in
// the log (sys_enter) and the model judges the event itself.
import type { KrsiEvent } from '../../signals/events.ts';
import type { CompiledRuleSet } from '../rules/types.ts';
import type { DeniedOut } from '../types.ts';
import { Engine } from '../engine.ts';
import { EnforcementModel } from './model.ts';

/** one denial, as compared between the kernel and the model */
export interface DenialKey {
  pid: number;
  op: string;
  rule: string;
  reason?: string;
}

export async function deniedDifferential(
  batches: AsyncIterable<KrsiEvent[]>,
  rules: CompiledRuleSet,
): Promise<{ kernel: DenialKey[]; model: DenialKey[]; modelOnly: DeniedOut[]; deniedSeqs: number[] }> {
  const model = new EnforcementModel({ rules, mode: 'enforce' });
  const engine = new Engine({ rules, mode: 'enforce', enforcement: model });
  const kernel: DenialKey[] = [], byModel: DeniedOut[] = [], asked: DenialKey[] = [], deniedSeqs: number[] = [];
  const key = (d: { pid: number; op: string; rule?: string; reason?: unknown }): DenialKey =>
    ({ pid: d.pid, op: d.op, rule: d.rule ?? '', ...(typeof d.reason === 'string' ? { reason: d.reason } : {}) });
  for await (const batch of batches) {
    for (const ev of batch) {
      if (ev.type === 'denied' && ev.op === 'tamper') continue; // self-protection: not a rule's verdict, the model has none
      if (ev.type !== 'denied') {
        engine.push(ev, (o) => { if (o.kind === 'denied') byModel.push(o); });
        continue;
      }
      if (ev.seq !== undefined) deniedSeqs.push(ev.seq);
      kernel.push(key(ev));
      const k = ev.key as { dev?: number; ino?: number };
      const base = { ts: ev.ts, pid: ev.pid, ppid: ev.ppid, uid: ev.uid, comm: ev.comm, seq: ev.seq };
      const file = typeof k.ino === 'number' ? { dev: k.dev ?? 0, ino: k.ino } : { dev: 0, ino: 0 };
      let attempt: KrsiEvent | undefined;
      // a FILELESS refusal says what the kernel saw: a file with no link left (a memfd has none either);
      // the model still decides whether that was configured
      const facts = (ev as { reason?: unknown }).reason === 'FILELESS' ? { nlink: 0 } : {};
      if (ev.op === 'exec') attempt = { ...base, type: 'exec', exe: { path: '', ...file, ...facts }, filename: '' };
      else if (ev.op === 'module_load') attempt = { ...base, type: 'module_load', exe: ev.exe, name: '', file };
      if (attempt) {
        const d = model.check(attempt);
        if (d) asked.push(key(d));
      }
    }
  }
  // model denials of recorded events (mprotect): each should pair with a kernel denial
  const modelOnly: DeniedOut[] = [];
  const unpaired = [...kernel.filter((k) => k.op === 'mprotect_exec')];
  for (const d of byModel) {
    const i = unpaired.findIndex((k) => k.pid === d.pid && k.op === d.op);
    if (i >= 0) { unpaired.splice(i, 1); asked.push(key(d)); } else modelOnly.push(d);
  }
  const order = (a: DenialKey, b: DenialKey) => a.pid - b.pid || a.op.localeCompare(b.op) || a.rule.localeCompare(b.rule);
  return { kernel: kernel.sort(order), model: asked.sort(order), modelOnly, deniedSeqs };
}
