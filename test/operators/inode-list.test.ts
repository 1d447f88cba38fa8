// inInodeList / notInInodeList: a list of paths resolved to this host's (dev, ino). A file with a listed
// path but another inode (a bind mount over /usr/bin/dpkg, a container's dpkg) is not in the list; a listed
// path whose file is replaced (a package manager upgrading itself) is resolved again on a miss, and the
// old inode stays in (the upgrading process still runs it).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OPERATORS } from '../../engine/operators/index.ts';
import { loadRuleSources } from '../../engine/rules/load.ts';

describe('inInodeList', () => {
  test('matches the host inode of a listed path, not another inode at that path, and follows a replacement', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'krsi-inodes-'));
    try {
      const pm = join(dir, 'dpkg');
      writeFileSync(pm, 'real');
      writeFileSync(join(dir, 'implant'), 'implant');
      const ctx = { lists: { pms: new Set<string | number>([pm, '/nonexistent/pm']) } };
      const inList = OPERATORS.get('inInodeList')!;
      const notIn = OPERATORS.get('notInInodeList')!;
      const set = inList.prepare!('pms', ctx);
      const real = statSync(pm);
      const implant = statSync(join(dir, 'implant'));
      assert.equal(inList.test({ dev: real.dev, ino: real.ino, path: '/anything' }, set), true);
      assert.equal(notIn.test({ dev: real.dev, ino: real.ino }, notIn.prepare!('pms', ctx)), false);
      // the path is dpkg's, the inode is the implant's
      assert.equal(inList.test({ dev: implant.dev, ino: implant.ino, path: pm }, set), false);
      assert.equal(inList.test({ dev: real.dev + 1, ino: real.ino }, set), false, 'the same inode number on another device');
      assert.equal(inList.test(undefined, set), false);
      assert.equal(inList.test({ dev: '1', ino: 2 }, set), false);
      // dpkg upgrades itself: a new inode renamed over the path
      copyFileSync(pm, pm + '.new');
      renameSync(pm + '.new', pm);
      const upgraded = statSync(pm);
      assert.notEqual(upgraded.ino, real.ino);
      await new Promise((r) => setTimeout(r, 1100)); // re-resolved at most once a second
      assert.equal(inList.test({ dev: upgraded.dev, ino: upgraded.ino }, set), true, 'the new inode, resolved again on a miss');
      assert.equal(inList.test({ dev: real.dev, ino: real.ino }, set), true, 'the old inode stays: the upgrading dpkg still runs it');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a list of something else than absolute paths is a located error; an unknown list too', async () => {
    const src = (list: unknown[], name = 'pms') => JSON.stringify({
      lists: { pms: list },
      rules: [{ id: 'r', description: 'd', tags: [], severity: 'low', match: { all: [{ fact: 'type', operator: 'equal', value: 'unlink' }, { fact: 'exe', operator: 'notInInodeList', value: name }] }, actions: [{ type: 'alert', message: 'm' }] }],
    }, null, 2);
    const bad = loadRuleSources([{ file: 'x.json', text: src(['usr/bin/dpkg']) }]);
    const e = bad.issues.find((i) => i.severity === 'error');
    assert.ok(e, 'an error');
    assert.equal(e!.code, 'BAD_OPERATOR_VALUE');
    assert.match(e!.message, /not an absolute path/);
    assert.ok(e!.line > 1, 'located');
    const unknown = loadRuleSources([{ file: 'x.json', text: src(['/usr/bin/dpkg'], 'nope') }]);
    assert.ok(unknown.issues.some((i) => i.code === 'UNKNOWN_LIST'));
    const ok = loadRuleSources([{ file: 'x.json', text: src(['/usr/bin/dpkg']) }]);
    assert.deepEqual(ok.issues.filter((i) => i.severity === 'error'), []);
  });
});
