// A kernel `denied` record as output: which verdict and which rule refused the operation. The live
// enforcer and the replay model name the verdict from the entry the record's key points at, in their
// own state; the record's own names (rule: its rule_id resolved when it was taken; verdict: added by
// krsi run before recording) come next.
import type { DeniedEvent } from '../../signals/events.ts';
import type { DeniedOut, VerdictOp } from '../types.ts';
import { KRSI_DENY, OP_BITS, type DenyReason } from './semantics.ts';

/** who set an op bit of a map entry */
export interface Blame {
  verdict: string;
  rule: string;
}

/** the key of the deny_tgid or deny_inode entry a record names */
export type DeniedKey = { tgid: number } | { dev: number; ino: number };

export interface DeniedContext {
  /** the verdict behind `bit` of the live entry under `key` */
  entry?(key: DeniedKey, bit: number): Blame | undefined;
  /** a record's rule_id as a rule name */
  ruleName?(id: number): string | undefined;
  /** the rule behind the mprotect counter or the module allowlist (their records carry rule_id 0) */
  kernelRule?(reason: DenyReason): string | undefined;
}

const REASONS = Object.fromEntries(Object.entries(KRSI_DENY).map(([k, v]) => [v, k])) as Record<number, DenyReason>;

function reasonOf(r: unknown): DenyReason | undefined {
  if (typeof r === 'string') return Object.hasOwn(KRSI_DENY, r) ? (r as DenyReason) : undefined;
  return typeof r === 'number' && Object.hasOwn(REASONS, r) ? REASONS[r] : undefined;
}

export function attributeDenied(ev: DeniedEvent, c: DeniedContext = {}): DeniedOut {
  const x = ev as DeniedEvent & { reason?: unknown; rule_id?: unknown; verdict?: unknown; enforced?: unknown };
  const key = ev.key as { reason?: unknown; rule_id?: unknown; dev?: number; ino?: number; counter?: unknown; module?: unknown };
  const given = x.reason ?? key.reason;
  const reason = reasonOf(given);
  const base = { kind: 'denied' as const, ts: ev.ts, seq: ev.seq ?? -1, pid: ev.pid };
  // a record whose op or reason this version does not know (a newer kernel program, a damaged or forged
  // log): reported as it is, blamed on no verdict and no rule
  const knownOp = ev.op === 'tamper' || (typeof ev.op === 'string' && Object.hasOwn(OP_BITS, ev.op) && ev.op !== 'quarantine');
  if (!knownOp || (given !== undefined && reason === undefined))
    return { ...base, op: knownOp ? (ev.op as VerdictOp) : 'unknown', verdict: `kernel:unknown_${knownOp ? 'reason' : 'op'}`, rule: 'unknown', key: { op: ev.op, reason: given, ...ev.key } };
  // self-protection (enforcers/protect.ts): no verdict, no rule behind it
  if (ev.op === 'tamper')
    return { ...base, op: 'tamper', ...(reason ? { reason } : {}), verdict: 'kernel:self_protect', rule: 'self-protect', key: ev.key, enforced: x.enforced !== false };
  const op = ev.op as VerdictOp;
  const ruleId = typeof x.rule_id === 'number' ? x.rule_id : typeof key.rule_id === 'number' ? key.rule_id : 0;
  const rule = ev.rule ?? (ruleId ? c.ruleName?.(ruleId) : undefined) ?? (reason ? c.kernelRule?.(reason) : undefined) ?? 'unknown';
  const out = (verdict: string, r = rule): DeniedOut => ({ ...base, op, ...(reason ? { reason } : {}), verdict, rule: r });
  if (reason === 'MPROTECT_LIMIT' || key.counter !== undefined) return out('kernel:mprotect_limit');
  if (reason === 'MODULE_ALLOW') return out('kernel:module_allowlist');
  if (reason === 'FILELESS') return out('kernel:deny_fileless_exec');
  // the memory fallback of a refused module file
  if (op === 'module_load' && (reason === 'INODE' || reason === 'MODULE_DENY') && key.module !== undefined) return out('kernel:module_refused');
  if (reason === 'MODULE_DENY') return out('kernel:module_denylist');
  const k: DeniedKey = reason === 'INODE' || (reason === undefined && key.ino) ? { dev: key.dev ?? 0, ino: key.ino ?? 0 } : { tgid: ev.pid };
  const b = c.entry?.(k, OP_BITS[op]);
  const recorded = typeof x.verdict === 'string' ? x.verdict : undefined;
  return out(b?.verdict ?? recorded ?? `kernel:${reason ?? 'unknown'}`, b?.rule ?? rule);
}
