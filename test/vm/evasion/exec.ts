// Host side of the exec evasion area (guest: test/vm/guest/evasion/exec.ts): kernel.deny_fileless_exec on
// BPF-LSM. Builds the static fixture; asserts EPERM and a FILELESS denied record for a memfd (fexecve,
// execveat) and a file unlinked after open, nothing for a file on disk or a hard-linked path, monitor mode
// recording without refusing, and the flag off by default and in the rule's own (monitor) mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../vm.ts';
import type { HostArea } from './index.ts';

const EPERM = 1;
const FILELESS = ['memfd', 'memfdAt', 'memfdScript', 'unlinked', 'unlinkedOverlay'] as const;
const ALLOWED = ['hardlinked', 'onDisk', 'system'] as const;

export const area: HostArea = {
  prepare(dir) {
    const cc = spawnSync('cc', ['-O2', '-Wall', '-static', '-o', join(dir, 'exec-evasion'), join(REPO_ROOT, 'test/live/fixtures/exec-evasion.c')], { encoding: 'utf8' });
    return cc.status === 0 ? undefined : `cc -static exec-evasion.c failed: ${cc.stderr}`;
  },
  register(result) {
    const r = (t: { skip: (why: string) => void }) => {
      const v = result();
      if (!v) t.skip('exec area skipped');
      return v;
    };

    test('the exec signal loads on this kernel and reports the facts: memfd path and fact, a memfd script, the last LD_PRELOAD, ld.so --preload behind a padded argv[0]', (t) => {
      const v = r(t);
      if (!v) return;
      const s = v.signals;
      assert.equal(s.memfd?.exe.path, '/memfd:sig (deleted)', JSON.stringify(s.memfd));
      assert.equal(s.memfd?.exe.memfd, true);
      assert.equal(s.memfd?.exe.nlink, 0);
      assert.equal(s.script?.script?.memfd, true, JSON.stringify(s.script));
      assert.equal(s.dup?.env?.LD_PRELOAD, '/tmp/evil.so');
      assert.deepEqual(s.dup?.env_dup, ['LD_PRELOAD']);
      assert.equal(s.ldso?.ldso?.preload, '/tmp/evil.so', JSON.stringify(s.ldso));
      assert.equal(s.ldso?.argv_truncated, true);
      // the walks' state across bpf_loop iterations (6.1 checks a callback once): a string's rest is
      // skipped, 2000 strings are walked, a long value is cut and flagged
      assert.equal(s.fake?.env?.LD_PRELOAD, undefined, JSON.stringify(s.fake?.env));
      assert.equal(s.fake?.env?.LD_AUDIT, undefined);
      assert.equal(s.many?.env?.LD_PRELOAD, '/tmp/late.so');
      assert.equal(s.cut?.env_truncated, true);
      assert.ok(s.cut?.env?.LD_LIBRARY_PATH?.startsWith('/opt/bbb'));
      // the path walk across iterations: a deep path keeps its last whole components behind /.../
      assert.match(s.deep?.exe.path ?? '', /^\/\.\.\.\/level_\d+_abcdef\//, s.deep?.exe.path);
      assert.ok(v.deepPath.endsWith(s.deep.exe.path.slice(4)), `${s.deep.exe.path} is the tail of ${v.deepPath}`);
    });

    test('off by default, and in the rule\'s own monitor mode: every technique runs, nothing is denied', (t) => {
      const v = r(t);
      if (!v) return;
      assert.equal(v.configBefore.flags, 0);
      for (const k of [...FILELESS, ...ALLOWED]) assert.equal(v.off[k].code, 0, `${k}: ${v.off[k].out}`);
      assert.deepEqual(v.off.denied, []);
      assert.equal(v.ownModeFlags, 0, 'a monitor-mode rule\'s kernel block configures nothing');
    });

    test('deny_fileless_exec enforced: memfd (fexecve, execveat) and an unlinked file get EPERM and a FILELESS denied record', (t) => {
      const v = r(t);
      if (!v) return;
      assert.equal(v.enforceConfig.flags & 1, 1, 'config.flags DENY_FILELESS set by the Enforcer');
      for (const k of FILELESS) {
        assert.equal(v.enforce[k].errno, EPERM, `${k}: ${v.enforce[k].out}`);
        const d = v.enforce.denied.filter((x: { pid: number }) => x.pid === v.enforce[k].pid);
        assert.equal(d.length, 1, `${k}: one denied record: ${JSON.stringify(v.enforce.denied)}`);
        assert.deepEqual({ op: d[0].op, reason: d[0].reason, enforced: d[0].enforced }, { op: 'exec', reason: 'FILELESS', enforced: true });
      }
    });

    test('deny_fileless_exec enforced: a file on disk and a path unlinked while a hard link remains still run', (t) => {
      const v = r(t);
      if (!v) return;
      for (const k of ALLOWED) {
        assert.equal(v.enforce[k].code, 0, `${k}: ${v.enforce[k].out}`);
        assert.equal(v.enforce.denied.filter((x: { pid: number }) => x.pid === v.enforce[k].pid).length, 0, k);
      }
    });

    test('monitor mode (config.enforce 0): the fileless execs run and are recorded (enforced false)', (t) => {
      const v = r(t);
      if (!v) return;
      for (const k of FILELESS) {
        assert.equal(v.monitor[k].code, 0, `${k}: ${v.monitor[k].out}`);
        const d = v.monitor.denied.filter((x: { pid: number }) => x.pid === v.monitor[k].pid);
        assert.deepEqual(d.map((x: { reason: string; enforced: boolean }) => [x.reason, x.enforced]), [['FILELESS', false]], k);
      }
    });

    test('a rule set without it turns the flag off again', (t) => {
      const v = r(t);
      if (!v) return;
      assert.equal(v.flagsAfter, 0);
      assert.equal(v.after.memfd.code, 0, v.after.memfd.out);
    });
  },
};
