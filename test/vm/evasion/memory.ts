// The memory area's host side (test/vm/guest/evasion/memory.ts runs in the guest): builds memory.c
// statically, the node hot loop and (with javac) the Java one, then asserts what the guest observed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../vm.ts';
import type { HostArea } from './index.ts';

type Run = { code: number | null; out: string; pid: number; denied: string[] };

const HOT_JS = "function f(x){let s=0;for(let i=0;i<1000;i++)s+=(x*i)^(s>>3);return s}\n" +
  "let s=0,n=0;const end=Date.now()+3000;while(Date.now()<end){s+=f(n++);const g=new Function('a','return a+'+(n%50));s+=g(1)}console.log(s)\n";
const HOT_JAVA = 'public class Hot { static long f(long x){ long s=0; for(int i=0;i<1000;i++) s+=(x*i)^(s>>3); return s; }\n' +
  ' public static void main(String[] a){ long s=0; long end=System.currentTimeMillis()+3000; int n=0; while(System.currentTimeMillis()<end){ s+=f(n++); s+=String.valueOf(s).length(); } System.out.println(s);} }\n';

export const area: HostArea = {
  prepare(dir) {
    const cc = spawnSync('cc', ['-O2', '-Wall', '-static', '-o', join(dir, 'memory'), join(REPO_ROOT, 'test/live/fixtures/memory.c')], { encoding: 'utf8' });
    if (cc.status !== 0) return `cc -static memory.c: ${cc.stderr}`;
    writeFileSync(join(dir, 'hot.js'), HOT_JS);
    writeFileSync(join(dir, 'Hot.java'), HOT_JAVA);
    spawnSync('javac', ['-d', dir, join(dir, 'Hot.java')]);
    return undefined;
  },
  register(result) {
    const EPERM = (r: Run, what: string) => {
      assert.equal(r.code, 1, `${what} refused: ${r.out}`);
      assert.match(r.out, /Operation not permitted/, what);
      assert.ok(r.denied.includes('mprotect_exec/TGID'), `${what}: a denied record (${r.denied})`);
    };
    const cases: [string, string][] = [
      ['rwxMmap', 'mmap(RWX)'], ['rwRx', 'mprotect(RX) after RW'], ['mmapRwRx', 'mmap(RW) then mprotect(RX)'],
      ['rie', 'personality(READ_IMPLIES_EXEC) + mprotect(RW) (reqprot RW, effective RWX)'], ['rxFile', 'mmap of a file with PROT_EXEC'],
      ['rxAnon', 'mmap(RX) anonymous'], ['pkey', 'pkey_mprotect(RX)'], ['shm', 'shmat(SHM_EXEC)'],
    ];
    for (const [k, what] of cases) {
      test(`an mprotect_exec verdict refuses ${what}`, (t) => {
        const r = result();
        if (!r) return t.skip('memory area not prepared');
        EPERM(r.verdict[k], what);
      });
    }
    test('an mprotect_exec verdict also stops an exec (the new image is mapped executable), not without one', (t) => {
      const r = result();
      if (!r) return t.skip('memory area not prepared');
      assert.notEqual(r.verdict.exec.code, 0, `exec under the verdict: ${r.verdict.exec.out}`);
      assert.ok(r.verdict.exec.denied.includes('mprotect_exec/TGID'), String(r.verdict.exec.denied));
      assert.equal(r.none.exec.code, 0, r.none.exec.out);
    });
    test('negatives: the same calls without a verdict succeed, nothing denied', (t) => {
      const r = result();
      if (!r) return t.skip('memory area not prepared');
      for (const [k, what] of cases) {
        assert.equal(r.none[k].code, 0, `${what}: ${r.none[k].out}`);
        assert.deepEqual(r.none[k].denied, [], what);
      }
    });
    test('the in-kernel counter counts W->X flips: the 101st is refused, then an executable mmap too; 100 pass', (t) => {
      const r = result();
      if (!r) return t.skip('memory area not prepared');
      assert.match(r.counter.out, /refused=1 mmap=Operation not permitted/);
      assert.ok(r.counter.denied.includes('mprotect_exec/MPROTECT_LIMIT'), String(r.counter.denied));
      assert.match(r.counterUnder.out, /refused=0 mmap=ok/);
      assert.deepEqual(r.counterUnder.denied, []);
    });
    test('the counter starts again at exec: a process refused past the limit execs a static helper that maps executable memory', (t) => {
      const r = result();
      if (!r) return t.skip('memory area not prepared');
      assert.equal(r.counterExec.code, 0, `exec after the limit: ${r.counterExec.out}`);
      assert.match(r.counterExec.out, /refused=1\n[0-9a-f]+$/);
      assert.deepEqual(r.counterExec.denied, ['mprotect_exec/MPROTECT_LIMIT']);
    });
    test('a JIT-like pattern (300 RW/R mprotects, 300 RWX mmaps, no flip) is never refused', (t) => {
      const r = result();
      if (!r) return t.skip('memory area not prepared');
      assert.equal(r.jitlike.code, 0, r.jitlike.out);
      assert.deepEqual(r.jitlike.denied, []);
    });
    test('real node JIT work under mprotect_limit 100 in enforce mode: not denied', (t) => {
      const r = result();
      if (!r) return t.skip('memory area not prepared');
      assert.equal(r.node.code, 0, `node: ${r.node.signal ?? ''} ${r.node.out}`);
      assert.deepEqual(r.node.denied, []);
    });
    test('a real JVM (C1, 3 s hot loop) under mprotect_limit 100 in enforce mode: not denied', (t) => {
      const r = result();
      if (!r) return t.skip('memory area not prepared');
      if (!r.java) return t.skip('no javac/java on the host');
      if (r.java.signal === 'SIGTERM') return t.skip(`the JVM did not finish within 60 s under TCG (${r.java.ms} ms)`);
      assert.equal(r.java.code, 0, `java: ${r.java.out}`);
      assert.deepEqual(r.java.denied, []);
    });
  },
};
