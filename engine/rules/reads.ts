// What facts a rule set reads, so that the stages producing costly facts run only when some rule needs
// them: the process table's `proc` fact, the exe hash (`sha256`) of exec events.
import type { CompiledRule, CompiledRuleSet } from './types.ts';

/** does the rule refer to the `proc` fact anywhere (a fact name, a key/field path, a template) */
export function usesProc(rule: CompiledRule): boolean {
  return /"proc"|\bproc\./.test(JSON.stringify(rule.source));
}

/** does any rule read the `sha256` fact of exec events (a condition, a key, a field or a template) */
export function needsExeHash(rules: CompiledRuleSet): boolean {
  return rules.rules.some((r) => (r.types === '*' || r.types.includes('exec')) && mentionsSha256(r.source));
}

const SHA_PATH = /^sha256(\.|$)/;

function mentionsSha256(node: unknown, key?: string): boolean {
  if (typeof node === 'string') {
    if ((key === 'fact' || key === 'field' || key === 'from' || key === 'by') && SHA_PATH.test(node)) return true;
    return key === 'message' && /\{\s*sha256\s*\}/.test(node);
  }
  if (Array.isArray(node)) return node.some((n) => mentionsSha256(n, key));
  if (node && typeof node === 'object') {
    // a fact-to-fact comparison names the other fact in value: {fact: "sha256"}
    return Object.entries(node).some(([k, v]) => (k === 'value' && v && typeof v === 'object' ? mentionsSha256(v) : mentionsSha256(v, k)));
  }
  return false;
}
