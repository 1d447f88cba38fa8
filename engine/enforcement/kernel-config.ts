// What the rules' `kernel` blocks ask of the enforcement programs, read once and the same way for the
// replay model and the live enforcer (which then resolves module names and paths to inodes). Only
// rules whose effective mode is enforce count (`mode` overrides every rule's own, as --mode does).
import type { CompiledRuleSet } from '../rules/types.ts';
import type { Mode } from '../types.ts';
import { kernelList } from './semantics.ts';

export interface ModuleList {
  map: 'module_allow' | 'module_deny';
  rule: string;
  names: string[];
}

export interface KernelConfig {
  /** the rules whose kernel blocks count, in order */
  rules: string[];
  /** the lowest mprotect_limit asked for; 0: the counter is off */
  mprotectLimit: number;
  mprotectRule: string;
  /** the first rule with a module allowlist, '' for none (the kernel reports its denials with rule_id 0) */
  allowRule: string;
  /** one per rule and list, in rule order */
  moduleLists: ModuleList[];
  denyExecPaths: { path: string; rule: string }[];
  /** config.flags DENY_FILELESS: refuse exec of a memfd or of a file with no link left */
  denyFileless: boolean;
  /** the first rule that asked for it, '' for none (the kernel reports its denials with rule_id 0) */
  filelessRule: string;
}

export function kernelConfig(set: CompiledRuleSet, mode?: Mode): KernelConfig {
  const c: KernelConfig = { rules: [], mprotectLimit: 0, mprotectRule: '', allowRule: '', moduleLists: [], denyExecPaths: [], denyFileless: false, filelessRule: '' };
  for (const r of set.rules) {
    const k = r.kernel;
    if (!k || r.source?.enabled === false || (mode ?? r.mode) !== 'enforce') continue;
    c.rules.push(r.id);
    if (k.mprotect_limit !== undefined && k.mprotect_limit > 0 && (c.mprotectLimit === 0 || k.mprotect_limit < c.mprotectLimit)) {
      c.mprotectLimit = k.mprotect_limit;
      c.mprotectRule = r.id;
    }
    if (k.deny_exec_paths !== undefined) for (const path of kernelList(set, k.deny_exec_paths, r.id)) c.denyExecPaths.push({ path, rule: r.id });
    if (k.module_allowlist !== undefined) {
      c.allowRule ||= r.id;
      c.moduleLists.push({ map: 'module_allow', rule: r.id, names: kernelList(set, k.module_allowlist, r.id) });
    }
    if (k.deny_fileless_exec === true && !c.denyFileless) {
      c.denyFileless = true;
      c.filelessRule = r.id;
    }
    if (k.module_denylist !== undefined) c.moduleLists.push({ map: 'module_deny', rule: r.id, names: kernelList(set, k.module_denylist, r.id) });
  }
  return c;
}

/** anything for the programs to check at all */
export function kernelConfigured(c: KernelConfig): boolean {
  return c.mprotectLimit > 0 || c.moduleLists.length > 0 || c.denyExecPaths.length > 0 || c.denyFileless;
}
