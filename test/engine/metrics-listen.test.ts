// --metrics binds loopback unless an address is given: the endpoint has no authentication. A real HTTP
// client connects through loopback and through this host's own non-loopback address; the CLI warns on
// stderr when the endpoint is reachable from the network.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';
import { KrsiMetrics, isLoopback, parseListen, serveMetrics } from '../../cli/metrics.ts';

const KRSI = fileURLToPath(new URL('../../bin/krsi.js', import.meta.url));
/** the CLI from the sources when dist/ is older than them (as test/helpers/krsi.ts does) */
const CLI = spawnSync(process.execPath, [KRSI, '--version'], { encoding: 'utf8' }).stderr.startsWith('krsi: dist/ is')
  ? ['--import', 'tsx', fileURLToPath(new URL('../../cli/main.ts', import.meta.url))]
  : [KRSI];

/** an IPv4 address of this host that is not loopback, if it has one */
const external = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

/** the status of GET url, or the connect error's code */
async function get(url: string): Promise<number | string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    await res.text();
    return res.status;
  } catch (e) {
    return ((e as Error & { cause?: { code?: string } }).cause?.code) ?? String(e);
  }
}

describe('--metrics address', () => {
  test('PORT and :PORT mean loopback; loopback addresses are recognised', () => {
    assert.deepEqual(parseListen('9464'), { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(parseListen(':9464'), { host: '127.0.0.1', port: 9464 });
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(a), true, a);
    for (const a of ['0.0.0.0', '::', '192.0.2.2', '::ffff:192.0.2.2', '128.0.0.1', 'fe80::1']) assert.equal(isLoopback(a), false, a);
  });

  test('a bare port is served on loopback only: not reachable through the host\'s other address', { skip: external ? undefined : 'needs a non-loopback IPv4 address' }, async () => {
    const s = await serveMetrics(new KrsiMetrics({ defaultMetrics: false }), '0');
    try {
      const port = new URL(s.url).port;
      assert.equal(new URL(s.url).hostname, '127.0.0.1');
      assert.equal(s.exposed, false);
      assert.equal(await get(`http://127.0.0.1:${port}/metrics`), 200);
      assert.equal(await get(`http://${external}:${port}/metrics`), 'ECONNREFUSED');
    } finally {
      await s.close();
    }
  });

  test('an explicit wildcard address is served there and marked exposed', { skip: external ? undefined : 'needs a non-loopback IPv4 address' }, async () => {
    const s = await serveMetrics(new KrsiMetrics({ defaultMetrics: false }), '0.0.0.0:0');
    try {
      assert.equal(s.exposed, true);
      assert.equal(await get(`http://${external}:${new URL(s.url).port}/metrics`), 200);
    } finally {
      await s.close();
    }
  });

  test('a host name that resolves to loopback is not exposed', async () => {
    const s = await serveMetrics(new KrsiMetrics({ defaultMetrics: false }), 'localhost:0');
    try {
      assert.equal(s.exposed, false, s.url);
    } finally {
      await s.close();
    }
  });

  /** krsi run's stderr until its "metrics on" line (or its exit); then SIGINT, on which it detaches what it loaded */
  async function runUntilMetrics(addr: string): Promise<string> {
    const child = spawn(process.execPath, [...CLI, 'run', '--mode', 'monitor', '--metrics', addr, '--duration', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (stderr += d));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    await Promise.race([exited, new Promise<void>((r) => {
      const t = setInterval(() => /metrics on http/.test(stderr) && (clearInterval(t), r()), 20);
      void exited.then(() => clearInterval(t));
    })]);
    if (child.exitCode === null) child.kill('SIGINT');
    await exited;
    return stderr;
  }

  test('krsi run --metrics 0.0.0.0:0 warns that the endpoint is unauthenticated and reachable; --metrics 0 does not', async () => {
    const wide = await runUntilMetrics('0.0.0.0:0');
    assert.match(wide, /metrics on http:\/\/0\.0\.0\.0:\d+\/metrics/, wide);
    assert.match(wide, /warning: .*unauthenticated/i, wide);
    const local = await runUntilMetrics('0');
    assert.match(local, /metrics on http:\/\/127\.0\.0\.1:\d+\/metrics/, local);
    assert.doesNotMatch(local, /unauthenticated/i, local);
  });
});

describe('--metrics under a local flood', () => {
  test('idle connections are capped and timed out: a scrape gets through once they are dropped', async () => {
    const { connect } = await import('node:net');
    const s = await serveMetrics(new KrsiMetrics({ defaultMetrics: false }), '0');
    const socks: import('node:net').Socket[] = [];
    try {
      const port = Number(new URL(s.url).port);
      const closed: boolean[] = [];
      for (let i = 0; i < 40; i++) {
        const c = connect(port, '127.0.0.1');
        const idx = i;
        closed[idx] = false;
        c.on('close', () => (closed[idx] = true)).on('error', () => {});
        socks.push(c);
      }
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(closed.filter(Boolean).length >= 8, `connections past the cap are closed (${closed.filter(Boolean).length} of 40)`);
      // the idle ones (no request sent) are dropped by the server's header timeout
      const end = Date.now() + 20_000;
      while (closed.some((c) => !c) && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
      assert.ok(closed.every(Boolean), 'idle connections outlived the server\'s timeouts');
      assert.equal(await get(s.url), 200);
    } finally {
      for (const c of socks) c.destroy();
      await s.close();
    }
  });
});
