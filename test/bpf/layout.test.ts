// Layout test: bpf/abi.ts, the one TypeScript mirror of bpf/krsi.h, against the header and the BTF of the
// compiled objects: every struct's size and offsets, every enum's values, every #define. A probe object is
// generated from the header itself (a pointer to each struct and enum puts them in BTF), so a struct or enum
// added to the header is checked without editing this test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needBpftool, needClang } from '../helpers/prereq.ts';
import { DEFINES, ENUMS, LAYOUTS, type StructLayout } from '../../bpf/abi.ts';

const skip = needClang() ?? needBpftool();
const BPF = fileURLToPath(new URL('../../bpf/', import.meta.url));
const HEADER = join(BPF, 'krsi.h');

interface BtfMember { name: string; bits_offset: number }
interface BtfType { id: number; kind: string; name: string; size?: number; members?: BtfMember[]; values?: { name: string; val: number }[] }

/** struct name -> layout and enum name -> {enumerator: value}, for krsi_* types in an object's BTF */
export function btfTypes(obj: string): { structs: Map<string, StructLayout>; enums: Map<string, Record<string, number>> } {
  const r = spawnSync('bpftool', ['-j', 'btf', 'dump', 'file', obj], { encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, `bpftool btf dump ${obj}: ${r.stderr}`);
  const structs = new Map<string, StructLayout>();
  const enums = new Map<string, Record<string, number>>();
  for (const t of (JSON.parse(r.stdout) as { types: BtfType[] }).types) {
    if (!t.name?.startsWith('krsi_')) continue;
    if (t.kind === 'STRUCT') {
      const fields: Record<string, number> = {};
      for (const m of t.members ?? []) fields[m.name] = m.bits_offset / 8;
      structs.set(t.name, { size: t.size ?? 0, fields });
    } else if (t.kind === 'ENUM' || t.kind === 'ENUM64') {
      enums.set(t.name, Object.fromEntries((t.values ?? []).map((v) => [v.name, Number(v.val)])));
    }
  }
  return { structs, enums };
}

/** differences between the mirror and the BTF, as readable lines; structs absent from the BTF are skipped */
export function layoutDiff(mirror: Record<string, StructLayout>, btf: Map<string, StructLayout>, where: string): string[] {
  const diffs: string[] = [];
  for (const [name, want] of Object.entries(mirror)) {
    const got = btf.get(name);
    if (!got) continue;
    if (got.size !== want.size) diffs.push(`${where}: struct ${name}: size ${got.size} in BTF, ${want.size} in bpf/abi.ts`);
    for (const [f, off] of Object.entries(got.fields)) {
      if (!(f in want.fields)) diffs.push(`${where}: struct ${name}: field ${f} (offset ${off}) missing from bpf/abi.ts`);
      else if (want.fields[f] !== off) diffs.push(`${where}: struct ${name}.${f}: offset ${off} in BTF, ${want.fields[f]} in bpf/abi.ts`);
    }
    for (const f of Object.keys(want.fields)) if (!(f in got.fields)) diffs.push(`${where}: struct ${name}.${f}: not in BTF`);
  }
  return diffs;
}

/** differences between abi.ts ENUMS and the BTF's enums (enums absent from the BTF are skipped) */
export function enumDiff(mirror: typeof ENUMS, btf: Map<string, Record<string, number>>, where: string): string[] {
  const diffs: string[] = [];
  for (const [name, { prefix, values }] of Object.entries(mirror)) {
    const got = btf.get(name);
    if (!got) continue;
    const want = Object.fromEntries(Object.entries(values).map(([k, v]) => [prefix + k.toUpperCase(), v]));
    for (const [e, v] of Object.entries(got)) {
      if (!(e in want)) diffs.push(`${where}: enum ${name}: ${e} = ${v} missing from bpf/abi.ts`);
      else if (want[e] !== v) diffs.push(`${where}: enum ${name}: ${e} = ${v} in BTF, ${want[e]} in bpf/abi.ts`);
    }
    for (const e of Object.keys(want)) if (!(e in got)) diffs.push(`${where}: enum ${name}: ${e} not in BTF`);
  }
  return diffs;
}

/** what a header declares at the top level: krsi_* structs and enums, #defines with a value */
function declared(text: string): { structs: string[]; enums: string[]; defines: string[] } {
  const all = (re: RegExp) => [...text.matchAll(re)].map((m) => m[1]);
  return { structs: all(/^struct (krsi_\w+) \{/gm), enums: all(/^enum (krsi_\w+) \{/gm), defines: all(/^#define (\w+)[ \t]+\S/gm) };
}

/** compile a generated BPF source with krsi's build flags; the object is removed with the directory */
async function compile(dir: string, name: string, source: string): Promise<string> {
  const { ensureObject } = await import('../../bpf/build.ts');
  const src = join(dir, `${name}.bpf.c`);
  writeFileSync(src, source);
  return ensureObject(src);
}

/** removes what compile() built (bpf/build/ext/<name>.o) */
function removeBuilt(obj: string | undefined): void {
  if (obj) rmSync(obj, { force: true });
}

/** a probe whose BTF holds every struct and enum of the header */
function probeSource(d: { structs: string[]; enums: string[] }): string {
  return [
    '#include <linux/types.h>',
    '#include "krsi.h"',
    ...d.structs.map((s) => `struct ${s} *probe_${s};`),
    ...d.enums.map((e) => `enum ${e} *probe_${e};`),
    'char LICENSE[] __attribute__((section("license"), used)) = "GPL";',
    '',
  ].join('\n');
}

/** compiles only when every #define has the value given (the compiler evaluates the header's expressions) */
function definesSource(defines: Record<string, number>): string {
  return [
    '#include <linux/types.h>',
    '#include "krsi.h"',
    ...Object.entries(defines).map(([n, v]) => `_Static_assert((${n}) == ${v}ULL, "${n}: krsi.h differs from bpf/abi.ts (${v})");`),
    '',
  ].join('\n');
}

const uniq = (tag: string) => `abi-${tag}-${process.pid}`;

test('the diffs catch a drifted offset, size and enum value', () => {
  const btf = new Map([['krsi_x', { size: 16, fields: { a: 0, b: 8 } }]]);
  assert.deepEqual(layoutDiff({ krsi_x: { size: 16, fields: { a: 0, b: 8 } } }, btf, 'o'), []);
  assert.equal(layoutDiff({ krsi_x: { size: 12, fields: { a: 0, b: 4 } } }, btf, 'o').length, 2);
  assert.equal(layoutDiff({ krsi_x: { size: 16, fields: { a: 0 } } }, btf, 'o').length, 1);
  const enums = new Map([['krsi_e', { KRSI_E_ONE: 1, KRSI_E_TWO: 2 }]]);
  assert.deepEqual(enumDiff({ krsi_e: { prefix: 'KRSI_E_', values: { one: 1, two: 2 } } }, enums, 'o'), []);
  assert.deepEqual(enumDiff({ krsi_e: { prefix: 'KRSI_E_', values: { one: 1, two: 3 } } }, enums, 'o'), ['o: enum krsi_e: KRSI_E_TWO = 2 in BTF, 3 in bpf/abi.ts']);
  assert.equal(enumDiff({ krsi_e: { prefix: 'KRSI_E_', values: { one: 1 } } }, enums, 'o').length, 1);
});

test('shared structs, enums and constants are declared in bpf/krsi.h only', () => {
  const shared = new Set([...Object.keys(DEFINES), ...Object.values(ENUMS).flatMap(({ prefix, values }) => Object.keys(values).map((k) => prefix + k.toUpperCase()))]);
  const bad: string[] = [];
  for (const f of readdirSync(BPF).filter((f) => (f.endsWith('.bpf.c') || f.endsWith('.h')) && f !== 'krsi.h')) {
    const d = declared(readFileSync(join(BPF, f), 'utf8'));
    for (const s of d.structs) bad.push(`bpf/${f}: struct ${s}`);
    for (const e of d.enums) bad.push(`bpf/${f}: enum ${e}`);
    for (const n of d.defines) if (shared.has(n)) bad.push(`bpf/${f}: #define ${n}`);
  }
  assert.deepEqual(bad, [], 'declare them in bpf/krsi.h (mirrored by bpf/abi.ts)');
});

test('bpf/abi.ts mirrors every struct, enum and #define of bpf/krsi.h, and nothing else', () => {
  const d = declared(readFileSync(HEADER, 'utf8'));
  assert.deepEqual(Object.keys(LAYOUTS).sort(), [...d.structs].sort(), 'structs: LAYOUTS vs krsi.h');
  assert.deepEqual(Object.keys(ENUMS).sort(), [...d.enums].sort(), 'enums: ENUMS vs krsi.h');
  assert.deepEqual(Object.keys(DEFINES).sort(), d.defines.filter((n) => n !== 'KRSI_H').sort(), '#defines: DEFINES vs krsi.h');
});

test('every struct and enum of bpf/krsi.h matches bpf/abi.ts in BTF', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-layout-'));
  let obj: string | undefined;
  try {
    obj = await compile(dir, uniq('probe'), probeSource(declared(readFileSync(HEADER, 'utf8'))));
    const btf = btfTypes(obj);
    assert.deepEqual([...btf.structs.keys()].sort(), Object.keys(LAYOUTS).sort(), 'every struct in the probe\'s BTF');
    assert.deepEqual([...btf.enums.keys()].sort(), Object.keys(ENUMS).sort(), 'every enum in the probe\'s BTF');
    assert.deepEqual(layoutDiff(LAYOUTS, btf.structs, 'bpf/krsi.h'), []);
    assert.deepEqual(enumDiff(ENUMS, btf.enums, 'bpf/krsi.h'), []);
  } finally {
    removeBuilt(obj);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every #define of bpf/krsi.h has bpf/abi.ts\'s value (and a drifted one fails to compile)', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-layout-'));
  const built: string[] = [];
  try {
    built.push(await compile(dir, uniq('defines'), definesSource({ ...DEFINES })));
    // the check itself: one value off, and the compiler names it
    await assert.rejects(compile(dir, uniq('drift'), definesSource({ ...DEFINES, KRSI_ARGV_LEN: DEFINES.KRSI_ARGV_LEN + 1 })), /KRSI_ARGV_LEN: krsi.h differs from bpf\/abi.ts/);
  } finally {
    for (const o of built) removeBuilt(o);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the compiled BPF programs agree with bpf/abi.ts', { skip }, async () => {
  const { ensureObject, sourceOf } = await import('../../bpf/build.ts');
  // the structs each object must carry in BTF (map keys and values, scratch): the check is never empty
  const carries: Record<string, string[]> = {
    signals: ['krsi_exec_event', 'krsi_hdr', 'krsi_file_id'],
    enforce: ['krsi_inode_key', 'krsi_verdict', 'krsi_config'],
    protect: ['krsi_obj_key', 'krsi_inode_key'],
  };
  for (const [name, must] of Object.entries(carries)) {
    if (!existsSync(sourceOf(name))) continue;
    const obj = ensureObject(name);
    const btf = btfTypes(obj);
    for (const s of must) assert.ok(btf.structs.has(s), `${basename(obj)}: struct ${s} in BTF`);
    assert.deepEqual(layoutDiff(LAYOUTS, btf.structs, `bpf/${name}.bpf.c`), []);
    assert.deepEqual(enumDiff(ENUMS, btf.enums, `bpf/${name}.bpf.c`), []);
  }
});

test('one mirror: signals/decode.ts and enforcers/maps.ts keep no layout table of their own', async () => {
  const decode = (await import('../../signals/decode.ts')) as Record<string, unknown>;
  const maps = (await import('../../enforcers/maps.ts')) as Record<string, unknown>;
  assert.equal(decode.LAYOUTS, undefined);
  assert.equal(maps.LAYOUTS, LAYOUTS, 'maps.ts re-exports bpf/abi.ts LAYOUTS');
});
