import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EnforcementModel } from '../../../engine/enforcement/model.ts';
import { kernelConfig } from '../../../engine/enforcement/kernel-config.ts';
import { KRSI_OP, OP_BITS, SEMANTICS, VALID_SUBJECTS, hookFor, verdictId } from '../../../engine/enforcement/semantics.ts';
import type { Subject, Verdict, VerdictOp } from '../../../engine/types.ts';
import { S, ev, rule, ruleSet } from '../helpers.ts';
import { readFileSync } from 'node:fs';

function verdict(op: VerdictOp, subject: Subject, ts = 0, ttl = 0, r = 'r1'): Verdict {
  return { id: verdictId(r, op, subject), rule: r, op, subject, ts, ttl_ns: ttl, expires: ttl ? ts + ttl : 0, mode: 'enforce' };
}

const exe = { path: '/tmp/vuln', dev: 2049, ino: 777 };

describe('enforcement model', () => {
  test('allows everything when there is no entry', () => {
    const m = new EnforcementModel();
    assert.equal(m.check(ev('exec', 1, 100, { exe })), undefined);
    assert.equal(m.check(ev('mprotect', 1, 100, { prot: 7 })), undefined);
    assert.equal(m.check(ev('module_load', 1, 100, { name: 'x' })), undefined);
  });

  test('deny_inode: exec of the denied inode only; another inode of the same path runs', () => {
    const m = new EnforcementModel();
    m.apply(verdict('exec', { kind: 'inode', dev: 2049, ino: 777 }));
    const d = m.check(ev('exec', 5, 100, { exe }));
    assert.equal(d?.op, 'exec');
    assert.equal(d?.reason, 'INODE');
    assert.equal(d?.verdict, 'r1:exec:inode:2049:777');
    assert.equal(m.check(ev('exec', 5, 100, { exe: { ...exe, ino: 778 } })), undefined);
    // an inode exec verdict does not deny module loads or mprotect
    assert.equal(m.check(ev('mprotect', 6, 100, { prot: 7 })), undefined);
  });

  test('TTL by event time: denied iff ts < expires; 0 never expires', () => {
    const m = new EnforcementModel();
    m.apply(verdict('exec', { kind: 'pid', pid: 42 }, 10 * S, 5 * S));
    assert.ok(m.check(ev('exec', 14 * S, 42)));
    assert.equal(m.check(ev('exec', 15 * S, 42)), undefined);
    m.apply(verdict('exec', { kind: 'pid', pid: 43 }, 10 * S, 0));
    assert.ok(m.check(ev('exec', 1e15, 43)));
  });

  test('expire(): a short verdict merged into a longer entry stays with it, as in the kernel\'s single map value', () => {
    const m = new EnforcementModel();
    m.apply(verdict('quarantine', { kind: 'pid', pid: 42 }, 1 * S, 0, 'long'));
    m.apply(verdict('exec', { kind: 'pid', pid: 42 }, 2 * S, 5 * S, 'short')); // the exec bit's last setter
    assert.equal(m.expire(100 * S), 0);
    assert.equal(m.check(ev('exec', 100 * S, 42))?.op, 'exec', 'the permanent quarantine still denies exec');
    // an entry of its own expires with it
    m.apply(verdict('exec', { kind: 'pid', pid: 43 }, 2 * S, 5 * S, 'short'));
    assert.equal(m.expire(100 * S), 1);
    assert.equal(m.check(ev('exec', 100 * S, 43)), undefined);
  });

  test('never pid 1, never selfPid', () => {
    const m = new EnforcementModel({ selfPid: 999 });
    m.apply(verdict('exec', { kind: 'inode', dev: 2049, ino: 777 }));
    m.apply(verdict('quarantine', { kind: 'pid', pid: 1 }));
    m.apply(verdict('quarantine', { kind: 'pid', pid: 999 }));
    assert.equal(m.check(ev('exec', 1, 1, { exe })), undefined);
    assert.equal(m.check(ev('exec', 1, 999, { exe })), undefined);
    assert.equal(m.check(ev('mprotect', 1, 1, { prot: 7 })), undefined);
    assert.ok(m.check(ev('exec', 1, 2, { exe })));
  });

  test('quarantine denies exec, PROT_EXEC mprotect and module load of that tgid only', () => {
    const m = new EnforcementModel();
    m.apply(verdict('quarantine', { kind: 'pid', pid: 42 }));
    assert.equal(m.check(ev('exec', 1, 42))?.reason, 'TGID');
    assert.equal(m.check(ev('mprotect', 1, 42, { prot: 6 }))?.op, 'mprotect_exec');
    assert.equal(m.check(ev('mprotect', 1, 42, { prot: 3 })), undefined, 'no PROT_EXEC: allowed');
    assert.equal(m.check(ev('module_load', 1, 42, { name: 'dummy' }))?.op, 'module_load');
    assert.equal(m.check(ev('exec', 1, 43)), undefined);
  });

  test('exit ends a pid verdict: a reused pid starts clean', () => {
    const m = new EnforcementModel();
    m.apply(verdict('exec', { kind: 'pid', pid: 42 }));
    assert.ok(m.check(ev('exec', 1, 42)));
    m.check(ev('exit', 2, 42, { code: 0 }));
    assert.equal(m.check(ev('exec', 3, 42)), undefined);
  });

  test('in-kernel counter: the 101st W->X flip is denied; other mprotects are not counted; others unaffected', () => {
    const m = new EnforcementModel();
    m.configure(ruleSet([rule({ id: 'mp', mode: 'enforce', kernel: { mprotect_limit: 100 } })]));
    for (let i = 0; i < 300; i++) assert.equal(m.check(ev('mprotect', i, 42, { prot: i % 2 ? 7 : 3 })), undefined, `call ${i + 1}`);
    for (let i = 0; i < 100; i++) assert.equal(m.check(ev('mprotect', 300 + i, 42, { prot: 5, flip: true })), undefined, `flip ${i + 1}`);
    assert.equal(m.check(ev('mprotect', 500, 42, { prot: 3 })), undefined, 'without PROT_EXEC');
    const d = m.check(ev('mprotect', 501, 42, { prot: 5, flip: true }));
    assert.equal(d?.reason, 'MPROTECT_LIMIT');
    assert.equal(d?.verdict, 'kernel:mprotect_limit');
    assert.equal(d?.rule, 'mp');
    assert.equal(m.check(ev('mprotect', 202, 43, { prot: 7 })), undefined, 'another process');
  });

  test('kernel blocks are read only from enforce-mode rules, or all with --mode enforce', () => {
    const set = ruleSet([rule({ id: 'mp', mode: 'monitor', kernel: { mprotect_limit: 1 } })]);
    const m = new EnforcementModel();
    const flip = { prot: 5, flip: true };
    m.configure(set);
    m.check(ev('mprotect', 1, 42, flip));
    assert.equal(m.check(ev('mprotect', 2, 42, flip)), undefined);
    m.configure(set, { mode: 'enforce' });
    m.check(ev('mprotect', 3, 42, flip));
    assert.ok(m.check(ev('mprotect', 4, 42, flip)));
    m.configure(ruleSet([rule({ id: 'mp', mode: 'enforce', kernel: { mprotect_limit: 1 } })]), { mode: 'monitor' });
    assert.equal(m.check(ev('mprotect', 5, 42, flip)), undefined);
  });

  test('module allowlist and denylist by name; denylist checked first', () => {
    const m = new EnforcementModel();
    m.configure(
      ruleSet(
        [rule({ id: 'allow', mode: 'enforce', kernel: { module_allowlist: 'ok' } }), rule({ id: 'deny', mode: 'enforce', kernel: { module_denylist: 'bad' } })],
        { ok: ['dummy', 'veth'], bad: ['veth'] },
      ),
    );
    assert.equal(m.check(ev('module_load', 1, 5, { name: 'dummy' })), undefined);
    assert.equal(m.check(ev('module_load', 1, 5, { name: 'rootkit' }))?.reason, 'MODULE_ALLOW');
    const d = m.check(ev('module_load', 1, 5, { name: 'veth' }));
    assert.equal(d?.reason, 'MODULE_DENY');
    assert.equal(d?.rule, 'deny');
  });

  test('module verdicts by name and by file inode', () => {
    const m = new EnforcementModel();
    m.apply(verdict('module_load', { kind: 'module', name: 'evil' }));
    m.apply(verdict('module_load', { kind: 'module_file', dev: 3, ino: 9 }));
    assert.ok(m.check(ev('module_load', 1, 5, { name: 'evil' })));
    assert.ok(m.check(ev('module_load', 1, 5, { name: 'other', file: { dev: 3, ino: 9 } })));
    assert.equal(m.check(ev('module_load', 1, 5, { name: 'other', file: { dev: 3, ino: 10 } })), undefined);
    // a module_file verdict does not deny exec of that inode
    assert.equal(m.check(ev('exec', 1, 5, { exe: { path: '/x', dev: 3, ino: 9 } })), undefined);
  });

  test('deny_exec_paths: by exe path in replay, by inode when resolvable', () => {
    const m = new EnforcementModel();
    const set = ruleSet([rule({ id: 'vuln', mode: 'enforce', kernel: { deny_exec_paths: 'vuln_paths' } })], { vuln_paths: ['/usr/bin/vuln'] });
    m.configure(set, { resolve: (p) => (p === '/usr/bin/vuln' ? { dev: 8, ino: 80 } : undefined) });
    assert.equal(m.check(ev('exec', 1, 5, { exe: { path: '/usr/bin/vuln', dev: 1, ino: 1 } }))?.rule, 'vuln');
    assert.equal(m.check(ev('exec', 1, 5, { exe: { path: '/elsewhere', dev: 8, ino: 80 } }))?.rule, 'vuln', 'hard link / copy at same inode');
    assert.equal(m.check(ev('exec', 1, 5, { exe: { path: '/usr/bin/ok', dev: 8, ino: 81 } })), undefined);
  });

  test('same key: ops OR-ed, later expiry wins; remove takes only its own bits', () => {
    const m = new EnforcementModel();
    const a = verdict('exec', { kind: 'pid', pid: 42 }, 0, 10, 'a');
    const b = verdict('mprotect_exec', { kind: 'pid', pid: 42 }, 5, 100, 'b');
    m.apply(a);
    m.apply(b);
    assert.equal(m.check(ev('exec', 50, 42))?.rule, 'a', 'expiry extended to the later one');
    assert.equal(m.check(ev('mprotect', 50, 42, { prot: 4 }))?.rule, 'b');
    m.remove(a.id);
    assert.equal(m.check(ev('exec', 50, 42)), undefined);
    assert.ok(m.check(ev('mprotect', 50, 42, { prot: 4 })));
    m.remove(b.id);
    assert.equal(m.sizes().tgid, 0);
  });

  test('invalid op/subject pairs are refused', () => {
    const m = new EnforcementModel();
    assert.throws(() => m.apply(verdict('mprotect_exec', { kind: 'inode', dev: 1, ino: 1 })), /cannot apply/);
  });

  test('expire drops verdicts whose TTL passed', () => {
    const m = new EnforcementModel();
    m.apply(verdict('exec', { kind: 'pid', pid: 42 }, 0, 10));
    assert.equal(m.expire(5), 0);
    assert.equal(m.expire(10), 1);
    assert.equal(m.list().length, 0);
  });
});

describe('semantics table', () => {
  test('op bits and deny reasons match bpf/krsi.h', () => {
    const h = readFileSync(new URL('../../../bpf/krsi.h', import.meta.url), 'utf8');
    const val = (name: string) => Number(new RegExp(`${name}\\s*=\\s*(\\d+)`).exec(h)?.[1]);
    assert.equal(KRSI_OP.EXEC, val('KRSI_OP_EXEC'));
    assert.equal(KRSI_OP.MPROTECT_EXEC, val('KRSI_OP_MPROTECT_EXEC'));
    assert.equal(KRSI_OP.MODULE_LOAD, val('KRSI_OP_MODULE_LOAD'));
    assert.equal(KRSI_OP.QUARANTINE, val('KRSI_OP_QUARANTINE'));
    for (const r of ['INODE', 'TGID', 'MPROTECT_LIMIT', 'MODULE_ALLOW', 'MODULE_DENY'] as const) {
      const k = { INODE: 1, TGID: 2, MPROTECT_LIMIT: 3, MODULE_ALLOW: 4, MODULE_DENY: 5 }[r];
      assert.equal(val(`KRSI_DENY_${r}`), k);
    }
    assert.equal(OP_BITS.quarantine, OP_BITS.exec | OP_BITS.mprotect_exec | OP_BITS.module_load);
  });

  test('every hook row names its event, op and ordered checks; replay models one row per event', () => {
    for (const row of SEMANTICS) {
      assert.ok(row.checks.length > 0, row.hook);
      assert.equal(OP_BITS[row.op], row.bit);
    }
    assert.equal(hookFor('exec')?.hook, 'bprm_check_security');
    assert.equal(hookFor('mprotect')?.hook, 'file_mprotect');
    assert.equal(hookFor('module_load')?.hook, 'kernel_read_file');
    assert.equal(hookFor('fork'), undefined);
    assert.ok(hookFor('mprotect')!.applies!(ev('mprotect', 0, 1, { prot: 4 })));
    assert.ok(!hookFor('mprotect')!.applies!(ev('mprotect', 0, 1, { prot: 3 })));
    assert.deepEqual(VALID_SUBJECTS.quarantine, ['pid']);
  });
});

describe('kernel configuration from kernel blocks (model and enforcer both read it)', () => {
  test('enforce-mode rules only (or all under --mode enforce); the lowest limit; lists per rule; the first allowlist names its denials', () => {
    const set = ruleSet(
      [
        rule({ id: 'a', mode: 'enforce', kernel: { mprotect_limit: 50, module_allowlist: 'ok' } }),
        rule({ id: 'b', mode: 'enforce', kernel: { mprotect_limit: 20, module_allowlist: 'ok2', deny_exec_paths: 'p' } }),
        rule({ id: 'c', mode: 'monitor', kernel: { mprotect_limit: 5, module_denylist: 'bad' } }),
      ],
      { ok: ['x'], ok2: ['y'], bad: ['z'], p: ['/bin/v'] },
    );
    const c = kernelConfig(set);
    assert.deepEqual(c.rules, ['a', 'b']);
    assert.deepEqual([c.mprotectLimit, c.mprotectRule, c.allowRule], [20, 'b', 'a']);
    assert.deepEqual(c.moduleLists, [{ map: 'module_allow', rule: 'a', names: ['x'] }, { map: 'module_allow', rule: 'b', names: ['y'] }]);
    assert.deepEqual(c.denyExecPaths, [{ path: '/bin/v', rule: 'b' }]);
    const all = kernelConfig(set, 'enforce');
    assert.deepEqual([all.rules, all.mprotectLimit, all.mprotectRule], [['a', 'b', 'c'], 5, 'c']);
    assert.deepEqual(kernelConfig(set, 'monitor').rules, []);
    assert.throws(() => kernelConfig(ruleSet([rule({ id: 'd', mode: 'enforce', kernel: { module_denylist: 'nope' } })])), /rule d: kernel block names unknown list "nope"/);
  });
});
