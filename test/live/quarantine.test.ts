// The LD_PRELOAD + W+X chain on the live signals of this kernel (issue 11, "escaping the quarantine"): real
// processes under `krsi run --mode monitor` with the bundled chain rule. An injected process's child has no
// exec of its own but runs the library: its W+X completes the chain on the child (proc.loader_injected);
// a W+X by the parent after a fork names the child forked before it among the verdict's descendants.
// (The kernel side, kill and quarantine, runs in the VM: test/vm/evasion/quarantine.ts.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needCc, needLiveBpf } from '../helpers/prereq.ts';

const KRSI = fileURLToPath(new URL('../../bin/krsi.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RULE = 'ld-preload-then-wx-quarantine';
const skip = needLiveBpf() ?? needCc();

let dir = '';
let krsi: ChildProcess | undefined;
const out: Record<string, any>[] = [];
let stderr = '';

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'krsi-q-live-'));
  for (const [args, what] of [
    [['-O2', '-Wall', '-pthread', '-o', join(dir, 'qhelper'), join(ROOT, 'test/vm/helpers/qhelper.c')], 'qhelper'],
    [['-O2', '-Wall', '-shared', '-fPIC', '-o', join(dir, 'qpreload.so'), join(ROOT, 'test/vm/helpers/qpreload.c')], 'qpreload.so'],
    [['-O2', '-Wall', '-shared', '-fPIC', '-o', join(dir, 'qaudit.so'), join(ROOT, 'test/vm/helpers/qaudit.c')], 'qaudit.so'],
  ] as const) {
    const cc = spawnSync('cc', args as unknown as string[], { encoding: 'utf8' });
    assert.equal(cc.status, 0, `cc ${what}: ${cc.stderr}`);
  }
  krsi = spawn(process.execPath, [KRSI, 'run', '--mode', 'monitor', '--format', 'json', '--rules', join(ROOT, 'rules'), '--rule', RULE], { stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  krsi.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) {
      try { out.push(JSON.parse(buf.slice(0, i))); } catch { /* not JSON */ }
    }
  });
  krsi.stderr!.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`signals not started within 60 s: ${stderr}`)), 60_000);
    krsi!.stderr!.on('data', (d: string) => {
      stderr += d;
      if (stderr.includes('signals started')) clearTimeout(t), resolve();
    });
    krsi!.once('exit', (c) => reject(new Error(`krsi run exited ${c}: ${stderr}`)));
  });
});

after(async () => {
  if (krsi && krsi.exitCode === null) {
    const gone = new Promise((r) => krsi!.once('exit', r));
    krsi.kill('SIGINT');
    await gone;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** run qhelper MODE (with LD_PRELOAD when given, `extra` environment after it, through `loader` [options]
 *  when given); its own pid and the child pid it printed */
function helper(mode: string, preload?: string, extra: Record<string, string> = {}, loader?: string[]): { pid: number; child: number; out: string } {
  const env: Record<string, string | undefined> = { ...process.env };
  delete env.LD_PRELOAD;
  delete env.LD_AUDIT;
  if (preload) env.LD_PRELOAD = preload;
  Object.assign(env, extra);
  const [file, ...args] = loader ? [...loader, join(dir, 'qhelper'), mode] : [join(dir, 'qhelper'), mode];
  const r = spawnSync(file, args, { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  return { pid: r.pid!, child: Number(/child=(\d+)/.exec(r.stdout)?.[1]), out: r.stdout };
}

async function outputs(pid: number, ms = 10_000): Promise<Record<string, any>[]> {
  const end = Date.now() + ms;
  for (;;) {
    const got = out.filter((o) => o.rule === RULE && o.pid === pid);
    if (got.length >= 3 || Date.now() > end) return got;
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('LD_PRELOAD exec -> fork -> the child makes a page W+X: the chain rule fires on the child (kill and quarantine, monitor)', { skip }, async () => {
  const h = helper('wxchild', join(dir, 'qpreload.so'));
  const got = await outputs(h.child);
  assert.deepEqual(got.map((o) => `${o.kind}:${o.op ?? ''}`).sort(), ['alert:', 'verdict:kill', 'verdict:quarantine'], `${JSON.stringify(out)}\n${stderr.slice(-2000)}`);
  assert.match(got.find((o) => o.kind === 'alert')!.message, new RegExp(`LD_PRELOAD=${join(dir, 'qpreload.so').replace(/[.]/g, '\\.')} \\(injected by the exec of pid ${h.pid}\\)`));
  assert.ok(got.every((o) => o.kind !== 'verdict' || o.applied === false), 'monitor: not applied');
});

test('the parent makes the page W+X after forking: the verdict names the child forked before it as a descendant', { skip }, async () => {
  const h = helper('wxparent', join(dir, 'qpreload.so'));
  const got = await outputs(h.pid);
  const v = got.filter((o) => o.kind === 'verdict');
  assert.equal(v.length, 2, JSON.stringify(got));
  for (const x of v) assert.deepEqual(x.descendants, [h.child]);
});

test('a thread, a setsid() child, a grandchild reparented to init, a CLONE_PARENT sibling: each W+X fires on the process that made it', { skip }, async () => {
  for (const mode of ['wxthread', 'wxsetsid', 'wxdouble', 'wxcloneparent']) {
    const h = helper(mode, join(dir, 'qpreload.so'));
    const wxpid = Number(/wxpid=(\d+)/.exec(h.out)?.[1]);
    assert.ok(wxpid > 0, `${mode}: ${h.out}`);
    const got = await outputs(wxpid);
    assert.ok(got.some((o) => o.kind === 'alert'), `${mode}: no alert on pid ${wxpid}: ${h.out}`);
  }
});

test('negatives: the same W+X without a preload, or with an allowlisted one, fires nothing', { skip }, async () => {
  const plain = helper('wxchild');
  const allowed = helper('wxchild', '/usr/libexec/coreutils/libstdbuf.so');
  // a positive after them: once it is out, the negatives' events were evaluated before it
  const marker = helper('wxchild', join(dir, 'qpreload.so'));
  await outputs(marker.child);
  for (const h of [plain, allowed]) assert.deepEqual(out.filter((o) => o.rule === RULE && (o.pid === h.child || o.pid === h.pid)), []);
});

const LDSO = '/lib64/ld-linux-x86-64.so.2';
const STDBUF = '/usr/libexec/coreutils/libstdbuf.so';

test('an allowlisted LD_PRELOAD in front of an LD_AUDIT library: the chain fires on the audit library', { skip }, async () => {
  const h = helper('wxchild', STDBUF, { LD_AUDIT: join(dir, 'qaudit.so') });
  const got = await outputs(h.child);
  assert.deepEqual(got.map((o) => `${o.kind}:${o.op ?? ''}`).sort(), ['alert:', 'verdict:kill', 'verdict:quarantine'], `${h.out}\n${JSON.stringify(out.slice(-5))}`);
  assert.match(got.find((o) => o.kind === 'alert')!.message, /LD_AUDIT=\S*qaudit\.so/);
});

test('a copied loader (./myld --preload lib prog): the chain fires, from the kernel\'s ldso block', { skip: skip || (!existsSync(LDSO) && `no ${LDSO}`) }, async () => {
  const myld = join(dir, 'myld');
  copyFileSync(LDSO, myld);
  const h = helper('wxchild', undefined, {}, [myld, '--preload', join(dir, 'qpreload.so')]);
  const got = await outputs(h.child);
  assert.deepEqual(got.map((o) => `${o.kind}:${o.op ?? ''}`).sort(), ['alert:', 'verdict:kill', 'verdict:quarantine'], `${h.out}\n${JSON.stringify(out.slice(-5))}`);
  assert.match(got.find((o) => o.kind === 'alert')!.message, /LD_PRELOAD=\S*qpreload\.so/);
});

test('an environment padded past the signal\'s bound before LD_PRELOAD: the chain fires (fail closed)', { skip }, async () => {
  const pad: Record<string, string> = {};
  for (let i = 0; i < 17_000; i++) pad[`P${i}`] = '1';
  const h = helper('wxchild', undefined, { ...pad, LD_PRELOAD: join(dir, 'qpreload.so') });
  const got = await outputs(h.child);
  assert.ok(got.some((o) => o.kind === 'alert'), `${h.out}\n${JSON.stringify(out.slice(-5))}`);
});

test('negatives: an allowlisted preload list, and the copied loader with an allowlisted --preload, fire nothing', { skip: skip || (!existsSync(LDSO) && `no ${LDSO}`) }, async () => {
  const myld = join(dir, 'myld');
  copyFileSync(LDSO, myld);
  const list = helper('wxchild', `${STDBUF} ${STDBUF}`);
  const viaLd = helper('wxchild', undefined, {}, [myld, '--preload', STDBUF]);
  const marker = helper('wxchild', join(dir, 'qpreload.so'));
  await outputs(marker.child);
  for (const h of [list, viaLd]) assert.deepEqual(out.filter((o) => o.rule === RULE && (o.pid === h.child || o.pid === h.pid)), []);
});
