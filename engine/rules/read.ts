// Stage 1 — read: each rule file's text -> a document with its data and a JSON pointer -> line/column map.
import { readFile, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import jsonMap from 'json-source-map';
import type { PointerInfo } from 'json-source-map';
import type { IssueCollector, Locate } from './issues.ts';
import { messageFor } from './messages.ts';

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

/** line/column (1-based) of a character offset */
function lineCol(text: string, pos: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < pos && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      start = i + 1;
    }
  }
  return { line, column: Math.max(1, pos - start + 1) };
}

/** keys that appear twice in one object (JSON.parse keeps the last silently): pointer and 1-based position of each repeat */
export function duplicateKeys(text: string): { pointer: string; key: string; line: number; column: number }[] {
  const out: { pointer: string; key: string; line: number; column: number }[] = [];
  type Frame = { obj: boolean; keys: Set<string>; seg: string; index: number; wantKey: boolean };
  const stack: Frame[] = [];
  const ptr = () => stack.map((f) => '/' + f.seg.replace(/~/g, '~0').replace(/\//g, '~1')).join('');
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\n') {
      line++;
      lineStart = i + 1;
    } else if (ch === '"') {
      const start = i;
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.obj && top.wantKey) {
        let key: string;
        try {
          key = JSON.parse(text.slice(start, j + 1)) as string;
        } catch {
          key = text.slice(start + 1, j);
        }
        top.seg = key;
        if (top.keys.has(key)) out.push({ pointer: ptr(), key, line, column: start - lineStart + 1 });
        top.keys.add(key);
        top.wantKey = false;
      }
      i = j;
    } else if (ch === '{' || ch === '[') {
      const top = stack[stack.length - 1];
      if (top && !top.obj) top.seg = String(top.index);
      stack.push({ obj: ch === '{', keys: new Set(), seg: '', index: 0, wantKey: ch === '{' });
    } else if (ch === '}' || ch === ']') {
      stack.pop();
    } else if (ch === ',') {
      const top = stack[stack.length - 1];
      if (top?.obj) top.wantKey = true;
      else if (top) top.index++;
    }
  }
  return out;
}

export function readDocuments(sources: RuleSource[], issues: IssueCollector): RuleDocument[] {
  const docs: RuleDocument[] = [];
  for (const src of sources) {
    // a UTF-8 byte order mark is not JSON; editors on some systems write one
    const s = src.text.charCodeAt(0) === 0xfeff ? { file: src.file, text: ' ' + src.text.slice(1) } : src;
    try {
      const { data, pointers } = jsonMap.parse(s.text);
      docs.push({ file: s.file, text: s.text, data, pointers, duplicates: duplicateKeys(s.text) });
    } catch (e) {
      const reason = (e as Error).message;
      const m = /position (\d+)/.exec(reason);
      const pos = m ? Number(m[1]) : s.text.length;
      docs.push({ file: s.file, text: s.text, pointers: {}, data: undefined });
      const at = lineCol(s.text, pos);
      issues.issues.push({ ...messageFor('PARSE_ERROR', { reason }), code: 'PARSE_ERROR', file: s.file, line: at.line, column: at.column, pointer: '' });
    }
  }
  return docs;
}

/** a Locate over the documents: nearest existing pointer (walking up), 1-based, and the rule id */
export function locator(docs: RuleDocument[]): Locate {
  const byFile = new Map(docs.map((d) => [d.file, d]));
  return ({ file, pointer, key }) => {
    const doc = byFile.get(file);
    let rule: string | undefined;
    const m = /^\/rules\/(\d+)(?:\/|$)/.exec(pointer);
    if (m && doc?.data && typeof doc.data === 'object') {
      const r = (doc.data as { rules?: unknown }).rules;
      const item = Array.isArray(r) ? r[Number(m[1])] : undefined;
      if (item && typeof item === 'object' && typeof (item as { id?: unknown }).id === 'string') rule = (item as { id: string }).id;
    }
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
        out.push({ file: f, text: await readFile(f, 'utf8') });
      } catch (e) {
        onMissing(f, (e as Error).message);
      }
    }
  }
  return out;
}

export { resolve as resolvePath };
