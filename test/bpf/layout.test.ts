// Layout test: the TypeScript mirrors of bpf/krsi.h (LAYOUTS of signals/decode.ts and enforcers/maps.ts)
// against the BTF of compiled objects: a probe object holding every header struct, and the real programs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { needBpftool, needClang } from '../helpers/prereq.ts';
import { LAYOUTS as SIGNAL_LAYOUTS, type StructLayout } from '../../signals/decode.ts';

const skip = needClang() ?? needBpftool();
const PROBE = fileURLToPath(new URL('./fixtures/layout.bpf.c', import.meta.url));
const MAPS_TS = fileURLToPath(new URL('../../enforcers/maps.ts', import.meta.url));

interface BtfMember { name: string; bits_offset: number }
interface BtfType { id: number; kind: string; name: string; size?: number; members?: BtfMember[] }

/** struct name -> layout, from an object's BTF (bpftool's JSON dump) */
export function btfStructs(obj: string): Map<string, StructLayout> {
  const r = spawnSync('bpftool', ['-j', 'btf', 'dump', 'file', obj], { encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, `bpftool btf dump ${obj}: ${r.stderr}`);
  const out = new Map<string, StructLayout>();
  for (const t of (JSON.parse(r.stdout) as { types: BtfType[] }).types) {
    if (t.kind !== 'STRUCT' || !t.name?.startsWith('krsi_')) continue;
    const fields: Record<string, number> = {};
    for (const m of t.members ?? []) fields[m.name] = m.bits_offset / 8;
    out.set(t.name, { size: t.size ?? 0, fields });
  }
  return out;
}

/** differences between a mirror and the BTF, as readable lines; structs absent from the BTF are skipped */
export function layoutDiff(mirror: Record<string, StructLayout>, btf: Map<string, StructLayout>, where: string): string[] {
  const diffs: string[] = [];
  for (const [name, want] of Object.entries(mirror)) {
    const got = btf.get(name);
    if (!got) continue;
    if (got.size !== want.size) diffs.push(`${where}: struct ${name}: size ${got.size} in BTF, ${want.size} in the mirror`);
    for (const [f, off] of Object.entries(got.fields)) {
      if (!(f in want.fields)) diffs.push(`${where}: struct ${name}: field ${f} (offset ${off}) missing from the mirror`);
      else if (want.fields[f] !== off) diffs.push(`${where}: struct ${name}.${f}: offset ${off} in BTF, ${want.fields[f]} in the mirror`);
    }
    for (const f of Object.keys(want.fields)) if (!(f in got.fields)) diffs.push(`${where}: struct ${name}.${f}: not in BTF`);
  }
  return diffs;
}

async function mirrors(): Promise<[string, Record<string, StructLayout>][]> {
  const out: [string, Record<string, StructLayout>][] = [['signals/decode.ts', SIGNAL_LAYOUTS]];
  if (existsSync(MAPS_TS)) {
    const m = (await import(MAPS_TS)) as { LAYOUTS?: Record<string, StructLayout> };
    if (m.LAYOUTS) out.push(['enforcers/maps.ts', m.LAYOUTS]);
  }
  return out;
}

test('the layout diff catches a drifted offset and size', () => {
  const btf = new Map([['krsi_x', { size: 16, fields: { a: 0, b: 8 } }]]);
  assert.deepEqual(layoutDiff({ krsi_x: { size: 16, fields: { a: 0, b: 8 } } }, btf, 'o'), []);
  assert.equal(layoutDiff({ krsi_x: { size: 12, fields: { a: 0, b: 4 } } }, btf, 'o').length, 2);
  assert.equal(layoutDiff({ krsi_x: { size: 16, fields: { a: 0 } } }, btf, 'o').length, 1);
});

test('every struct of bpf/krsi.h matches its TypeScript mirrors', { skip }, async () => {
  const { ensureObject } = await import('../../bpf/build.ts');
  const btf = btfStructs(ensureObject(PROBE));
  assert.ok(btf.size >= 10, `the probe object has the krsi structs in BTF (found ${[...btf.keys()].join(', ')})`);
  for (const [file, layouts] of await mirrors()) {
    // every mirrored struct exists in the header
    for (const name of Object.keys(layouts)) assert.ok(btf.has(name), `${file}: struct ${name} is not in bpf/krsi.h`);
    assert.deepEqual(layoutDiff(layouts, btf, 'bpf/krsi.h'), [], `${file} drifted from bpf/krsi.h`);
  }
  // every event struct is mirrored by the decoder
  for (const name of btf.keys()) {
    if (name.endsWith('_event') || name === 'krsi_hdr') assert.ok(name in SIGNAL_LAYOUTS, `struct ${name} has no mirror in signals/decode.ts`);
  }
});

test('the compiled BPF programs agree with the mirrors', { skip }, async () => {
  const { ensureObject, sourceOf } = await import('../../bpf/build.ts');
  for (const name of ['signals', 'enforce', 'protect']) {
    if (!existsSync(sourceOf(name))) continue;
    const btf = btfStructs(ensureObject(name));
    for (const [file, layouts] of await mirrors()) assert.deepEqual(layoutDiff(layouts, btf, `bpf/${name}.bpf.c`), [], `${file} drifted`);
  }
});
