// Stage 1 — read: each rule file's text -> a document with its data and a JSON pointer -> line/column map
// (located-json.ts), refused when over a limit (limits.ts): such a document is not validated further.
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { IssueCollector, Locate } from './issues.ts';
import { messageFor } from './messages.ts';
import { parseJson, type PointerInfo } from './located-json.ts';
import { limitIssues, readBoundedFile, type LimitOptions } from './limits.ts';

export interface RuleSource {
  file: string;
  text: string;
}

export interface RuleDocument {
  file: string;
  text: string;
  /** undefined when the text is not valid JSON */
  data?: unknown;
  pointers: Record<string, PointerInfo>;
  /** keys repeated within one object (reported as DUPLICATE_KEY) */
  duplicates?: { pointer: string; key: string; line: number; column: number }[];
}

const RULE_LIMITS: LimitOptions = { dataKeys: new Set(['value', 'params']), limitItemsOf: /^\/rules\/\d+$/ };

/** the id of the rule a pointer is in, if the data has one */
export function ruleAt(data: unknown, pointer: string): string | undefined {
  const m = /^\/rules\/(\d+)(?:\/|$)/.exec(pointer);
  const rules = m && data && typeof data === 'object' ? (data as { rules?: unknown }).rules : undefined;
  const item = Array.isArray(rules) ? rules[Number(m![1])] : undefined;
  const id = item && typeof item === 'object' ? (item as { id?: unknown }).id : undefined;
  return typeof id === 'string' ? id : undefined;
}

/** read each source: parse errors and limits are located issues; a document with one is not validated further */
export function readDocuments(sources: RuleSource[], issues: IssueCollector): RuleDocument[] {
  const docs: RuleDocument[] = [];
  for (const src of sources) {
    // a UTF-8 byte order mark is not JSON; editors on some systems write one
    const s = src.text.charCodeAt(0) === 0xfeff ? { file: src.file, text: ' ' + src.text.slice(1) } : src;
    const p = parseJson(s.text);
    if (p.error) {
      const code = p.error.code;
      const { line, column, pointer } = p.error;
      issues.issues.push({ ...messageFor(code, { reason: p.error.reason }), code, file: s.file, line, column, pointer, rule: ruleAt(p.data, pointer) });
      docs.push({ file: s.file, text: s.text, pointers: {}, data: undefined });
      continue;
    }
    const over = limitIssues(p.data, RULE_LIMITS);
    for (const l of over) {
      const info = p.pointers[l.pointer];
      const pos = (l.atKey && info?.key) || info?.value || { line: 0, column: 0 };
      const args = l.code === 'TOO_MANY' ? { limit: l.limit, what: l.what } : { key: l.key };
      issues.issues.push({ ...messageFor(l.code, args), code: l.code, file: s.file, line: pos.line + 1, column: pos.column + 1, pointer: l.pointer, rule: ruleAt(p.data, l.pointer) });
    }
    docs.push({ file: s.file, text: s.text, data: over.length ? undefined : p.data, pointers: p.pointers, duplicates: p.duplicates });
  }
  return docs;
}

/** a Locate over the documents: nearest existing pointer (walking up), 1-based, and the rule id */
export function locator(docs: RuleDocument[]): Locate {
  const byFile = new Map(docs.map((d) => [d.file, d]));
  return ({ file, pointer, key }) => {
    const doc = byFile.get(file);
    const rule = ruleAt(doc?.data, pointer);
    if (!doc) return { line: 1, column: 1, rule };
    let p = pointer;
    for (;;) {
      const info = doc.pointers[p];
      if (info) {
        const pos = key && info.key ? info.key : info.value;
        return { line: pos.line + 1, column: pos.column + 1, rule };
      }
      if (p === '') return { line: 1, column: 1, rule };
      p = p.slice(0, p.lastIndexOf('/'));
      key = false;
    }
  };
}

/** expand files and directories (their *.json files, sorted, schema.json excluded) into sources */
export async function readSources(paths: string[], onMissing: (file: string, reason: string, dirEmpty?: boolean) => void): Promise<RuleSource[]> {
  const out: RuleSource[] = [];
  for (const p of paths) {
    let files: string[];
    try {
      const st = await stat(p);
      if (st.isDirectory()) {
        files = (await readdir(p))
          .filter((n) => n.endsWith('.json') && n !== 'schema.json')
          .sort()
          .map((n) => join(p, n));
        if (files.length === 0) onMissing(p, 'no rule files', true);
      } else files = [p];
    } catch (e) {
      onMissing(p, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message);
      continue;
    }
    for (const f of files) {
      try {
        out.push({ file: f, text: readBoundedFile(f) });
      } catch (e) {
        onMissing(f, (e as Error).message);
      }
    }
  }
  return out;
}

export { resolve as resolvePath };
