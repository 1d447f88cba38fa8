// Dependencies point one way: cli/ (commands, wiring, output, metrics) above enforcers/ above engine/
// above signals/ above bpf/, and lib/ (logging, durations, file checks) below them all. A module may
// import its own layer and the layers below it; this walks every import of every run-time source.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LAYERS, ROOT, importsOf, layerOf, sources } from './imports.ts';

const files = sources(LAYERS);

describe('import direction', () => {
  it('finds the sources and their imports (the walk itself works)', () => {
    assert.ok(files.length > 90, `${files.length} sources`);
    assert.ok(files.includes('cli/main.ts'));
    assert.ok(importsOf('cli/main.ts').includes('cli/commands/replay.ts'));
    // dynamic imports count too
    assert.ok(files.some((f) => importsOf(f).length > 0));
  });

  it('no module imports a layer above its own', () => {
    const bad: string[] = [];
    for (const f of files) {
      const mine = LAYERS.indexOf(layerOf(f)!);
      for (const t of importsOf(f)) {
        const l = layerOf(t);
        if (l === undefined) bad.push(`${f} imports ${t}, outside the layers (${LAYERS.join(', ')})`);
        else if (LAYERS.indexOf(l) > mine) bad.push(`${f} (${layerOf(f)}) imports ${t} (${l}, above it)`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('every import names a file that exists', () => {
    const missing = files.flatMap((f) => importsOf(f).filter((t) => !existsSync(join(ROOT, t))).map((t) => `${f} -> ${t}`));
    assert.deepEqual(missing, []);
  });

  it('no run-time module is imported only by tests (commands and the entry are reached from cli/main.ts)', () => {
    const reached = new Set<string>(['cli/main.ts']);
    // what the product reaches: the entry and the scripts it spawns or builds with
    const roots = ['cli/main.ts', 'bpf/build.ts', 'signals/hash-reader.ts', ...sources(['bench'])];
    const todo = [...roots];
    while (todo.length) {
      const f = todo.pop()!;
      for (const t of importsOf(f)) if (!reached.has(t)) (reached.add(t), todo.push(t));
    }
    const unreached = files.filter((f) => !reached.has(f) && !roots.includes(f));
    assert.deepEqual(unreached, []);
  });

  it('the check fails on an upward import (a layer above, seen from below)', () => {
    assert.ok(LAYERS.indexOf('cli') > LAYERS.indexOf('engine'));
    assert.ok(LAYERS.indexOf('lib') < LAYERS.indexOf('bpf'));
    assert.equal(layerOf('engine/engine.ts'), 'engine');
    assert.equal(layerOf('test/x.ts'), undefined);
  });
});
