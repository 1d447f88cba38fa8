// krsi in a pid namespace other than the host's (a container without hostPID): process.pid is that namespace's number while
// the enforcement programs compare host tgids, so its exemption and its pid verdicts would land on other
// processes. loadEnforcement refuses there, before anything is loaded, with exit 3's error class.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { needRoot } from '../helpers/prereq.ts';

const PROGRAMS = fileURLToPath(new URL('../../enforcers/programs.ts', import.meta.url));
const haveUnshare = spawnSync('sh', ['-c', 'command -v unshare'], { stdio: 'ignore' }).status === 0;

test('enforcement refuses to load in a nested pid namespace; the host namespace is fine', { skip: needRoot() ?? (haveUnshare ? undefined : 'needs unshare (util-linux)') }, () => {
  const code = `import(${JSON.stringify(PROGRAMS)}).then(async (m) => {
    process.stdout.write(JSON.stringify({ problem: m.pidNamespaceProblem() ?? null }) + '\\n');
    try { await m.loadEnforcement({ selfPid: process.pid }); process.stdout.write('loaded\\n'); }
    catch (e) { process.stdout.write(JSON.stringify({ name: e.name, exitCode: e.exitCode, message: e.message }) + '\\n'); }
  })`;
  const r = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, '--import', 'tsx', '-e', code], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, KRSI_LOG_LEVEL: 'error' } });
  assert.equal(r.status, 0, r.stderr);
  const [p, e] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.match(p.problem, /pid namespace other than the host.s/);
  assert.equal(e.name, 'EnforcementUnavailable');
  assert.equal(e.exitCode, 3);
  assert.match(e.message, /pid namespace other than the host.s .*hostPID/);
  const host = spawnSync(process.execPath, ['--import', 'tsx', '-e', `import(${JSON.stringify(PROGRAMS)}).then((m) => process.stdout.write(String(m.pidNamespaceProblem())))`], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(host.stdout, 'undefined', host.stderr);
});
