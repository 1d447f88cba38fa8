// The replay model against the semantics table, row by row: every check of every modelled hook has
// a setup that makes exactly that check hit, and the model must deny with that row's reason; when
// two checks of a hook both hit, the earlier row wins. A row added to the table without a setup here
// fails the test, so the model cannot silently drift from the table the kernel tests use.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EnforcementModel } from '../../../engine/enforcement/model.ts';
import { SEMANTICS, hookFor, verdictId, type CheckRow, type HookRow } from '../../../engine/enforcement/semantics.ts';
import type { Subject, Verdict, VerdictOp } from '../../../engine/types.ts';
import type { KrsiEvent } from '../../../signals/events.ts';
import { ev, rule, ruleSet } from '../helpers.ts';

const PID = 4242;
const EXE = { path: '/opt/x', dev: 7, ino: 70 };
const MOD = { dev: 8, ino: 80 };

function v(op: VerdictOp, subject: Subject): Verdict {
  return { id: verdictId('r', op, subject), rule: 'r', op, subject, ts: 0, ttl_ns: 0, expires: 0, mode: 'enforce' };
}

/** per hook: the event it checks; per check: how to make it hit */
const EVENT: Record<string, () => KrsiEvent> = {
  // a memfd: what the FILELESS row refuses (the other rows do not read the facts)
  bprm_check_security: () => ev('exec', 10, PID, { exe: { ...EXE, nlink: 0, memfd: true, deleted: true }, filename: EXE.path }),
  file_mprotect: () => ev('mprotect', 10, PID, { prot: 5, flip: true }),
  mmap_file: () => ev('mmap', 10, PID, { prot: 7, flags: 0x22, anon: true }),
  kernel_read_file: () => ev('module_load', 10, PID, { name: 'evil', file: MOD }),
};

const SETUP: Record<string, (m: EnforcementModel) => void> = {
  'bprm_check_security/INODE/deny_inode': (m) => m.apply(v('exec', { kind: 'inode', dev: EXE.dev, ino: EXE.ino })),
  'bprm_check_security/TGID/deny_tgid': (m) => m.apply(v('exec', { kind: 'pid', pid: PID })),
  'bprm_check_security/FILELESS/config': (m) => m.configure(ruleSet([rule({ id: 'k', mode: 'enforce', kernel: { deny_fileless_exec: true } })])),
  'file_mprotect/TGID/deny_tgid': (m) => m.apply(v('mprotect_exec', { kind: 'pid', pid: PID })),
  'file_mprotect/MPROTECT_LIMIT/mprotect_count': (m) => m.configure(ruleSet([rule({ id: 'k', mode: 'enforce', kernel: { mprotect_limit: 1 } })])),
  'mmap_file/TGID/deny_tgid': (m) => m.apply(v('mprotect_exec', { kind: 'pid', pid: PID })),
  'mmap_file/MPROTECT_LIMIT/mprotect_count': (m) => m.configure(ruleSet([rule({ id: 'k', mode: 'enforce', kernel: { mprotect_limit: 1 } })])),
  'kernel_read_file/INODE/deny_inode': (m) => m.apply(v('module_load', { kind: 'module_file', dev: MOD.dev, ino: MOD.ino })),
  'kernel_read_file/INODE/deny_module_name': (m) => m.apply(v('module_load', { kind: 'module', name: 'evil' })),
  'kernel_read_file/TGID/deny_tgid': (m) => m.apply(v('module_load', { kind: 'pid', pid: PID })),
  'kernel_read_file/MODULE_DENY/module_deny': (m) => m.configure(ruleSet([rule({ id: 'k', mode: 'enforce', kernel: { module_denylist: 'l' } })], { l: ['evil'] })),
  'kernel_read_file/MODULE_ALLOW/module_allow': (m) => m.configure(ruleSet([rule({ id: 'k', mode: 'enforce', kernel: { module_allowlist: 'l' } })], { l: ['good'] })),
};

const key = (h: HookRow, c: CheckRow) => `${h.hook}/${c.reason}/${c.map}`;
const modelled = SEMANTICS.filter((h) => hookFor(h.event) === h);

/** for the counter rows: prime the count (a W->X flip) so this call is over the limit */
function check(m: EnforcementModel, h: HookRow) {
  if (h.hook === 'file_mprotect') m.check(ev('mprotect', 9, PID, { prot: 5, flip: true }));
  // an mmap is never counted: two flips put the count over the limit of 1 first
  if (h.hook === 'mmap_file') for (const t of [8, 9]) m.check(ev('mprotect', t, PID, { prot: 5, flip: true }));
  return m.check(EVENT[h.hook]());
}

describe('enforcement model follows the semantics table', () => {
  for (const h of modelled) {
    for (const c of h.checks) {
      test(`${h.hook}: ${c.map} (${c.reason}) denies ${h.op}`, () => {
        const setup = SETUP[key(h, c)];
        assert.ok(setup, `no model setup for table row ${key(h, c)}`);
        const m = new EnforcementModel();
        setup(m);
        const d = check(m, h);
        assert.equal(d?.op, h.op);
        assert.equal(d?.reason, c.reason);
        // never pid 1, never krsi itself
        const m1 = new EnforcementModel({ selfPid: PID });
        setup(m1);
        assert.equal(check(m1, h), undefined, 'selfPid exempt');
      });
    }

    test(`${h.hook}: checks run in table order (earlier row wins)`, () => {
      for (let i = 0; i < h.checks.length; i++) {
        for (let j = i + 1; j < h.checks.length; j++) {
          const [a, b] = [h.checks[i], h.checks[j]];
          const m = new EnforcementModel();
          // configure() replaces the kernel config, so apply config rows first, verdicts after
          const cfgRow = (r: CheckRow) => Number(!['mprotect_count', 'module_deny', 'module_allow', 'config'].includes(r.map));
          const rows = [a, b].sort((x, y) => cfgRow(x) - cfgRow(y));
          if (rows.every((r) => ['module_deny', 'module_allow'].includes(r.map))) {
            m.configure(ruleSet([rule({ id: 'k', mode: 'enforce', kernel: { module_denylist: 'd', module_allowlist: 'a' } })], { d: ['evil'], a: ['good'] }));
          } else for (const r of rows) SETUP[key(h, r)](m);
          assert.equal(check(m, h)?.reason, a.reason, `${a.map} before ${b.map}`);
        }
      }
    });
  }

  test('no live entry: allow; a request without PROT_EXEC is never refused', () => {
    for (const h of modelled) assert.equal(new EnforcementModel().check(EVENT[h.hook]()), undefined, h.hook);
    const m = new EnforcementModel();
    SETUP['file_mprotect/TGID/deny_tgid'](m);
    assert.equal(m.check(ev('mprotect', 10, PID, { prot: 3 })), undefined);
    assert.equal(m.check(ev('mmap', 10, PID, { prot: 3, flags: 0x22 })), undefined);
  });

  test('the counter counts W->X flips only; an mmap or a W+X-at-once mprotect is checked, never counted', () => {
    const m = new EnforcementModel();
    SETUP['file_mprotect/MPROTECT_LIMIT/mprotect_count'](m);
    for (let i = 0; i < 50; i++) assert.equal(m.check(ev('mprotect', 10 + i, PID, { prot: 7, wx: true })), undefined);
    for (let i = 0; i < 50; i++) assert.equal(m.check(ev('mmap', 100 + i, PID, { prot: 7, flags: 0x22 })), undefined);
    assert.equal(m.check(ev('mprotect', 200, PID, { prot: 5, flip: true })), undefined, 'the first flip is within the limit');
    assert.equal(m.check(ev('mprotect', 201, PID, { prot: 5, flip: true }))?.reason, 'MPROTECT_LIMIT', 'the second is over it');
    assert.equal(m.check(ev('mmap', 202, PID, { prot: 5, flags: 0x22 }))?.reason, 'MPROTECT_LIMIT');
    assert.equal(m.check(ev('mmap', 203, PID, { prot: 3, flags: 0x22 })), undefined, 'not executable');
  });

  test('the unmodelled hook (kernel_load_data) says why', () => {
    const rows = SEMANTICS.filter((h) => !modelled.includes(h));
    assert.deepEqual(rows.map((r) => r.hook), ['kernel_load_data']);
    assert.match(rows[0].note ?? '', /replay models every module_load event as kernel_read_file/);
  });
});
