// Pins only root can touch (bpf/pins.ts, and the pin paths of bpf/pinning.ts): directory ownership on real
// directories (a temp dir standing for bpffs), then real pins on the host's bpffs (a hash map and a
// tracepoint link of the basic fixture: no LSM needed), with a symlink, another user's pin, another
// kind of object in place of a map, and a fresh bpffs mount in a private mount namespace.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, lstatSync, mkdirSync, mkdtempSync, rmSync, rmdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needLiveBpf, needRoot } from '../helpers/prereq.ts';
import { PinRefused, pinFileProblem, securePinDir } from '../../bpf/pins.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/basic.bpf.c', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NOBODY = 65534;

const refusedWith = (re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof PinRefused, String(e));
  assert.equal(e.exitCode, 3);
  assert.match(e.message, re);
  return true;
};

describe('securePinDir (a temp dir as the bpffs root)', { skip: needRoot() }, () => {
  let base = '';
  before(() => {
    base = mkdtempSync(join(tmpdir(), 'krsi-pins-'));
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  test('creates each missing directory 0700 and root\'s, whatever the umask', () => {
    const old = process.umask(0);
    try {
      securePinDir(`${base}/krsi/enforce`, base);
    } finally {
      process.umask(old);
    }
    for (const d of [`${base}/krsi`, `${base}/krsi/enforce`]) {
      const st = statSync(d);
      assert.equal(st.mode & 0o7777, 0o700, d);
      assert.equal(st.uid, 0);
    }
    securePinDir(`${base}/krsi/enforce`, base); // again: its own directories check out
  });

  test('a directory another user made first is refused (exit 3), naming it and its owner', () => {
    mkdirSync(`${base}/u/enforce`, { recursive: true, mode: 0o700 });
    chownSync(`${base}/u`, NOBODY, NOBODY);
    assert.throws(() => securePinDir(`${base}/u/enforce`, base), refusedWith(new RegExp(`${base}/u: owned by uid ${NOBODY}`)));
    mkdirSync(`${base}/v`, { mode: 0o700 });
    mkdirSync(`${base}/v/enforce`, { mode: 0o700 });
    chownSync(`${base}/v/enforce`, NOBODY, NOBODY);
    assert.throws(() => securePinDir(`${base}/v/enforce`, base), refusedWith(/v\/enforce: owned by uid 65534/));
  });

  test('a group- or world-writable directory, even root\'s, is refused', () => {
    mkdirSync(`${base}/w`, { mode: 0o700 });
    chmodSync(`${base}/w`, 0o777);
    assert.throws(() => securePinDir(`${base}/w/enforce`, base), refusedWith(/\/w: group\/world writable \(mode 777\)/));
    mkdirSync(`${base}/g`, { mode: 0o700 });
    chmodSync(`${base}/g`, 0o770);
    assert.throws(() => securePinDir(`${base}/g`, base), refusedWith(/writable \(mode 770\)/));
  });

  test('a symlink in place of a pin directory is refused, and nothing is made through it', () => {
    const target = mkdtempSync(join(tmpdir(), 'krsi-pins-target-'));
    try {
      mkdirSync(`${base}/s`, { mode: 0o700 });
      symlinkSync(target, `${base}/s/enforce`);
      assert.throws(() => securePinDir(`${base}/s/enforce/x`, base), refusedWith(/s\/enforce: it is a symlink/));
      assert.deepEqual(spawnSync('ls', ['-A', target], { encoding: 'utf8' }).stdout, '');
    } finally {
      rmSync(target, { recursive: true, force: true });
    }
  });

  test('a pin a non-root caller cannot inspect (root\'s 0700 directory) is a problem, not a crash', () => {
    mkdirSync(`${base}/private`, { mode: 0o700 });
    chmodSync(base, 0o755);
    // the non-root process runs the compiled modules from a world-readable copy: the checkout may be in a
    // directory others cannot read (root's 0700 clone); pins.js imports only lib/fsafe.js and node: builtins
    const pub = mkdtempSync(join(tmpdir(), 'krsi-pins-pub-'));
    try {
      for (const d of ['', 'bpf', 'lib']) mkdirSync(join(pub, d), { recursive: true, mode: 0o755 });
      chmodSync(pub, 0o755);
      writeFileSync(join(pub, 'package.json'), '{"type":"module"}');
      for (const f of ['bpf/pins.js', 'lib/fsafe.js']) copyFileSync(join(ROOT, 'dist', f), join(pub, f));
      for (const f of ['package.json', 'bpf/pins.js', 'lib/fsafe.js']) chmodSync(join(pub, f), 0o644);
      const code = `const m = await import(${JSON.stringify(join(pub, 'bpf/pins.js'))}); process.stdout.write(String(m.pinFileProblem(${JSON.stringify(`${base}/private/link`)})));`;
      const r = spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '--input-type=module', '-e', code], { encoding: 'utf8', cwd: pub, timeout: 30_000 });
      assert.equal(r.stdout, 'cannot be checked (EACCES)', r.stderr);
    } finally {
      rmSync(pub, { recursive: true, force: true });
    }
  });

  test('root\'s existing 0755 directory is used; a world-writable base only with the sticky bit; paths outside the base refused', () => {
    mkdirSync(`${base}/r`, { mode: 0o755 });
    securePinDir(`${base}/r/enforce`, base);
    const open = mkdtempSync(join(tmpdir(), 'krsi-pins-base-'));
    try {
      chmodSync(open, 0o777);
      assert.throws(() => securePinDir(`${open}/krsi`, open), refusedWith(/mode 777/));
      chmodSync(open, 0o1777); // bpffs's own default root: no one can rename or remove what root made there
      securePinDir(`${open}/krsi`, open);
    } finally {
      rmSync(open, { recursive: true, force: true });
    }
    assert.throws(() => securePinDir('/tmp/elsewhere', base), refusedWith(/not under/));
  });
});

describe('pins on the host bpffs', { skip: needLiveBpf() }, () => {
  // imported here: the binding loads libbpf lazily, and this suite only runs where it exists
  let lib: typeof import('../../bpf/libbpf.ts');
  let obj: import('../../bpf/libbpf.ts').BpfObject | undefined;
  const dir = `/sys/fs/bpf/krsi/test-pins-${process.pid}`;

  before(async () => {
    lib = await import('../../bpf/libbpf.ts');
    const { ensureObject } = await import('../../bpf/build.ts');
    obj = lib.BpfObject.open(ensureObject(FIXTURE));
    obj.load();
    obj.attach('on_getppid');
    obj.map('targets').pin(`${dir}/targets`);
    obj.pinLink('on_getppid', `${dir}/link`);
  });
  after(() => {
    obj?.close();
    rmSync(dir, { recursive: true, force: true });
    try {
      rmdirSync('/sys/fs/bpf/krsi'); // when this test made it
    } catch {
      // not empty or gone
    }
  });

  test('pin() makes its directories 0700 and root\'s; the pin itself checks out', () => {
    assert.equal(statSync(dir).mode & 0o7777, 0o700);
    assert.equal(pinFileProblem(`${dir}/targets`), undefined);
    const m = lib.BpfMap.fromPinned(`${dir}/targets`);
    assert.equal(m.name, 'targets');
    m.close();
  });

  test('a symlink in place of a pin is never opened', () => {
    symlinkSync(`${dir}/targets`, `${dir}/alias`);
    assert.ok(lstatSync(`${dir}/alias`).isSymbolicLink());
    assert.throws(() => lib.BpfMap.fromPinned(`${dir}/alias`), refusedWith(/alias is not trusted: a symlink/));
  });

  test("another user's pin, or one anyone may write, is not trusted", () => {
    lib.BpfMap.fromPinned(`${dir}/targets`).pin(`${dir}/theirs`); // a second pin of the same map
    chownSync(`${dir}/theirs`, NOBODY, NOBODY);
    assert.throws(() => lib.BpfMap.fromPinned(`${dir}/theirs`), refusedWith(/owned by uid 65534/));
    chownSync(`${dir}/theirs`, 0, 0);
    chmodSync(`${dir}/theirs`, 0o666); // root's, but anyone may open it for writing
    assert.throws(() => lib.BpfMap.fromPinned(`${dir}/theirs`), refusedWith(/writable \(mode 666\)/));
  });

  test('a link pinned where a map is expected is refused by kind, asked of the kernel', () => {
    assert.throws(() => lib.BpfMap.fromPinned(`${dir}/link`), refusedWith(/a link, not a map/));
    const fd = lib.openPin(`${dir}/link`, 'link');
    try {
      const info = lib.linkInfo(fd);
      const prog = lib.progInfoById(info.progId);
      assert.equal(prog.name, 'on_getppid');
      assert.ok(prog.mapIds.includes(obj!.map('targets').id), 'the program\'s map ids name the map it uses');
    } finally {
      lib.closeFd(fd);
    }
  });

  test('pinning into a directory another user owns is refused', () => {
    mkdirSync(`${dir}/u`, { mode: 0o700 });
    chownSync(`${dir}/u`, NOBODY, NOBODY);
    assert.throws(() => obj!.map('targets').pin(`${dir}/u/targets`), refusedWith(/u: owned by uid 65534/));
  });

  test('a bpffs that krsi mounts is 0700 (bpffs defaults to 1777; it always adds the sticky bit)', { skip: spawnSync('sh', ['-c', 'command -v unshare']).status ? 'needs unshare' : undefined }, () => {
    const code = `const l = await import(${JSON.stringify(join(ROOT, 'bpf/libbpf.ts'))}); l.ensureBpffs(); const fs = await import('node:fs'); process.stdout.write((fs.statSync('/sys/fs/bpf').mode & 0o7777).toString(8));`;
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'umount -l /sys/fs/bpf && exec "$@"', 'sh', process.execPath, '--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8', cwd: ROOT, timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '1700');
  });
});
