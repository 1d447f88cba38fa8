// The control socket of `krsi run` (enforcers/control.ts) on a real Unix socket, with a real verdict store
// and the CLI as a separate process: `krsi verdicts add|list|rm|clear` reach the serving enforcer instead of
// opening the pinned maps (which self-protection refuses them). The BPF side of it runs in the VM
// (test/vm/protect.test.ts); here the enforcer writes an in-memory map, which is what is asserted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Enforcer, MemoryMapWriter } from '../../enforcers/index.ts';
import { VerdictStore } from '../../enforcers/store.ts';
import { controlRequest, serveControl } from '../../enforcers/control.ts';
import { needRoot } from '../helpers/prereq.ts';
import { krsiAsync } from '../helpers/krsi.ts';

async function session() {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-control-'));
  const maps = new MemoryMapWriter();
  const enf = new Enforcer(VerdictStore.open(join(dir, 'state')), maps, { selfPid: process.pid });
  const sock = join(dir, 'run', 'control.sock');
  const server = await serveControl(enf, sock);
  return {
    dir, maps, enf, sock, server,
    async close() { await server.close(); await enf.close(); rmSync(dir, { recursive: true, force: true }); },
  };
}

test('krsi verdicts add / list / rm / clear go to the serving krsi run, which applies them', { skip: needRoot() }, async () => {
  const s = await session();
  const victim = spawn('sleep', ['60']);
  try {
    // the CLI runs as a separate process: spawnSync would block this event loop, which serves the socket
    const run = async (args: string[]) => {
      const env = { KRSI_LOG_LEVEL: process.env.KRSI_LOG_LEVEL, KRSI_CONTROL_SOCK: process.env.KRSI_CONTROL_SOCK };
      Object.assign(process.env, { KRSI_LOG_LEVEL: 'error', KRSI_CONTROL_SOCK: s.sock });
      try {
        const r = await krsiAsync(['verdicts', ...args, '--state', join(s.dir, 'other-state')]);
        return { status: r.code, stdout: r.stdout, stderr: r.stderr };
      } finally {
        for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
      }
    };
    let r = await run(['add', '--op', 'exec', '--pid', String(victim.pid), '--ttl', '5m', '--rule', 'ctl']);
    assert.equal(r.status, 0, r.stderr);
    const id = r.stdout.trim();
    assert.equal(id, `ctl:exec:pid:${victim.pid}`);
    assert.equal(s.maps.get({ map: 'deny_tgid', tgid: victim.pid! })?.ops, 1, 'the serving enforcer wrote the map entry');
    assert.deepEqual(s.enf.store.list().map((v) => v.verdict.id), [id], 'in the serving krsi run\'s store, not the CLI\'s --state');
    r = await run(['list', '--format', 'json']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`"kind":"map_entry","map":"deny_tgid","key":\\{"map":"deny_tgid","tgid":${victim.pid}\\}`));
    r = await run(['rm', id]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(s.maps.get({ map: 'deny_tgid', tgid: victim.pid! }), undefined);
    r = await run(['rm', id]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no such verdict/);
    await run(['add', '--op', 'exec', '--pid', String(victim.pid), '--rule', 'ctl']);
    r = await run(['clear']);
    assert.equal(r.stdout, 'removed 1 verdict(s)\n');
    assert.equal(s.maps.entries.size, 0);
  } finally {
    victim.kill();
    await s.close();
  }
});

test('the socket: a 0700 root directory, a 0600 socket; a non-root process cannot reach it; one server per socket', { skip: needRoot() }, async () => {
  const s = await session();
  try {
    assert.equal(statSync(join(s.dir, 'run')).mode & 0o777, 0o700);
    assert.equal(statSync(s.sock).mode & 0o777, 0o600);
    assert.deepEqual(await controlRequest({ cmd: 'ping' }, s.sock), { ok: true, pid: process.pid });
    // nobody (65534) connecting: refused by the directory's mode
    const c = spawn(process.execPath, ['-e', `require('net').connect(${JSON.stringify(s.sock)}).on('connect', () => console.log('connected')).on('error', (e) => console.log(e.code))`], { uid: 65534, gid: 65534, cwd: '/' });
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    await new Promise((res) => c.on('close', res));
    assert.equal(out.trim(), 'EACCES');
    await assert.rejects(serveControl(s.enf, s.sock), /another krsi run is serving it/);
  } finally {
    await s.close();
  }
});

test('no krsi run: controlRequest says so (undefined); a stale socket is replaced; a directory another user owns is refused', { skip: needRoot() }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-control-'));
  try {
    assert.equal(await controlRequest({ cmd: 'ping' }, join(dir, 'none.sock')), undefined);
    const enf = new Enforcer(VerdictStore.open(join(dir, 'state')), new MemoryMapWriter(), { selfPid: process.pid });
    mkdirSync(join(dir, 'run'), { mode: 0o755 });
    writeFileSync(join(dir, 'run', 'control.sock'), ''); // stale: nobody answers
    const server = await serveControl(enf, join(dir, 'run', 'control.sock'));
    assert.equal(statSync(join(dir, 'run')).mode & 0o777, 0o700, 'a root-owned directory is made private');
    assert.equal((await controlRequest({ cmd: 'ping' }, join(dir, 'run', 'control.sock')))?.ok, true);
    await server.close();
    mkdirSync(join(dir, 'evil'), { mode: 0o700 });
    chownSync(join(dir, 'evil'), 65534, 65534);
    chmodSync(dir, 0o755);
    await assert.rejects(serveControl(enf, join(dir, 'evil', 'control.sock')), /not a directory owned by root/);
    await enf.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a process under a tgid verdict cannot lift verdicts through the control socket', { skip: needRoot() }, async () => {
  const s = await session();
  // a root process that waits for a line, then sends {"cmd":"clear"} and prints the answer
  const client = spawn(process.execPath, ['-e', `
    const net = require('node:net');
    process.stdin.once('data', () => {
      const c = net.connect(${JSON.stringify(s.sock)}, () => c.write(JSON.stringify({ cmd: 'clear' }) + '\\n'));
      let out = ''; c.setEncoding('utf8').on('data', (d) => (out += d)).on('close', () => { process.stdout.write(out); process.exit(0); });
    });`], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, NODE_TEST_CONTEXT: undefined } });
  try {
    await new Promise((r) => client.once('spawn', r));
    const now = Number(process.hrtime.bigint());
    const v = { id: `t:quarantine:pid:${client.pid}`, rule: 't', op: 'quarantine' as const, subject: { kind: 'pid' as const, pid: client.pid! }, ts: now, ttl_ns: 0, expires: 0, mode: 'enforce' as const };
    assert.equal(s.enf.apply(v as never), true);
    let out = '';
    client.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const done = new Promise((r) => client.once('exit', r));
    const keep = setTimeout(() => client.kill('SIGKILL'), 20_000); // keeps the loop alive while the client works
    client.stdin.write('go\n');
    await done;
    clearTimeout(keep);
    await new Promise((r) => setImmediate(r));
    const res = JSON.parse(out) as { ok: boolean; error?: string };
    assert.equal(res.ok, false, out);
    assert.match(res.error ?? '', /under a krsi verdict/);
    assert.ok(s.enf.list().some((x) => x.id === v.id), 'the quarantine is still there');
  } finally {
    client.kill('SIGKILL');
    await s.close();
  }
});
