// JSONPath steps as json-rules-engine resolves them, shared by the closure compiler (compile.ts), the
// code generator (codegen.ts) and the validator (through compile.ts).

const PATH_RE = /^\$(\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])*$/;
const PATH_STEP_RE = /\.([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]/g;

/** split a JSONPath ("$.a.b", "$.argv[0]") into property names; a string is the reason it is refused */
export function parsePath(path: string): string[] | { error: string } {
  if (typeof path !== 'string' || !PATH_RE.test(path)) {
    return { error: 'only "$" followed by .name and [index] steps is supported, e.g. "$.ino" or "$.argv[0]"' };
  }
  const out: string[] = [];
  for (const m of path.matchAll(PATH_STEP_RE)) out.push(m[1] ?? m[2]);
  return out;
}

/** parsePath for a path already validated: a refused one throws */
export function pathSteps(path: string): string[] {
  const p = parsePath(path);
  if (!Array.isArray(p)) throw new Error(`bad path ${path}: ${p.error}`);
  return p;
}

const PROTOS: object[] = [Object.prototype, Array.prototype, String.prototype, Number.prototype, Boolean.prototype, Function.prototype];
/** a property name that plain indexing resolves exactly like Object.hasOwn + index on JSON values */
export function safeName(s: string): boolean {
  return s === 'length' || !PROTOS.some((p) => s in p);
}

/** jsonpath-plus step semantics: follow only truthy values' own properties */
export function walk(v: unknown, segs: readonly string[]): unknown {
  for (let i = 0; i < segs.length; i++) {
    if (!v || !Object.hasOwn(v as object, segs[i])) return undefined;
    v = (v as Record<string, unknown>)[segs[i]];
  }
  return v;
}
