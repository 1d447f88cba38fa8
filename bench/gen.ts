// Seeded generator of realistic krsi event streams, for benchmarks and tests.
// Processes follow small life scripts (fork -> exec -> mprotects and unlinks -> exit) run concurrently,
// so pids interleave and get reused; a few daemons live forever; module loads are rare and a
// user-space module_list snapshot comes every `snapshotEvery` events. Every `attackEvery` events one
// scripted chain is embedded, in turn: each attack of the KRSI talk and its look-alike negative.
//
//   node --import tsx bench/gen.ts --events 100000 [--seed 1] [--attack-every 20000] [-o out.jsonl]
import { createWriteStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { KrsiEvent } from '../signals/events.ts';

export interface GenOptions {
  /** number of events to generate */
  count: number;
  seed?: number;
  /** ts of the first event, ns (default 1000 s after boot) */
  startTs?: number;
  /** concurrently running process scripts (default 400) */
  concurrency?: number;
  /** one attack (or negative) chain every this many events (default 50000; 0 = none) */
  attackEvery?: number;
  /** a module_list snapshot every this many events (default 20000) */
  snapshotEvery?: number;
  /** pids wrap here, so they get reused (default 4194304, like pid_max) */
  pidMax?: number;
}

/** the attack and negative chains, embedded in this order, round robin */
export const CHAINS = [
  'self_delete', // a process unlinks its own executable (T1070.004)
  'replace_binary', // negative: dpkg replaces a binary another process runs
  'ld_preload_wx', // exec with LD_PRELOAD, then W+X mprotect in the same process (quarantine)
  'ld_preload', // LD_PRELOAD exec alone (alert only)
  'mprotect_flood', // > 100 mprotects by one process, then W+X
  'hidden_module', // module loads and disappears from the module list (T1014)
  'listed_module', // negative: a module loads and stays listed
  'vulnerable_exec', // exec of a known vulnerable binary (deny-list by path)
] as const;
export type ChainKind = (typeof CHAINS)[number];

const DISK = 2049; // st_dev of /dev/sda1 (8:1)
const TMPFS = 40;

interface Bin {
  path: string;
  ino: number;
}
const BINS: Bin[] = [
  'bash', 'sh', 'ls', 'cat', 'grep', 'sed', 'awk', 'find', 'python3', 'node', 'perl', 'git', 'make', 'gcc', 'cc1',
  'ld', 'as', 'curl', 'wget', 'tar', 'gzip', 'ssh', 'scp', 'ps', 'top', 'vim', 'less', 'sort', 'uniq', 'cut', 'date',
  'id', 'env', 'sleep', 'cp', 'mv', 'rm', 'mkdir', 'chmod', 'systemctl', 'journalctl', 'apt-get', 'dpkg', 'java',
].map((n, i) => ({ path: `/usr/bin/${n}`, ino: 1_310_000 + i * 37 }));
const DAEMONS: Bin[] = ['/usr/lib/systemd/systemd', '/usr/sbin/sshd', '/usr/sbin/cron', '/usr/bin/containerd', '/usr/sbin/rsyslogd'].map(
  (path, i) => ({ path, ino: 1_200_000 + i * 11 }),
);
const MODULES = ['ext4', 'xfs', 'overlay', 'br_netfilter', 'nf_conntrack', 'ip_tables', 'x_tables', 'veth', 'bridge', 'tun', 'loop', 'dm_mod', 'nvme', 'e1000e', 'virtio_net'];
const LEGIT_LOADS = ['nf_nat', 'xt_MASQUERADE', 'vxlan', 'wireguard', 'zram', 'fuse', 'btrfs', 'sctp'];
const ROOTKITS = ['diamorphine', 'reptile', 'suterusu'];
/** paths a deny-list rule can name (the polkit CVE-2021-4034 binary) */
export const VULNERABLE_PATHS = ['/usr/bin/pkexec'];
const VULN: Bin = { path: '/usr/bin/pkexec', ino: 1_400_001 };
const INSMOD: Bin = { path: '/usr/bin/kmod', ino: 1_400_002 };

/** mulberry32: small seeded PRNG, uniform in [0, 1) (also the differential tests' generator) */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Proc {
  pid: number;
  ppid: number;
  uid: number;
  comm: string;
  exe: { path: string; dev: number; ino: number };
}

/** a step of a script: builds the next event for its process (or undefined to skip) */
type Step = (p: Proc) => Omit<KrsiEvent, 'ts' | 'pid' | 'ppid' | 'uid' | 'comm' | 'exe'> | undefined;

interface Script {
  proc: Proc;
  steps: Step[];
  i: number;
}

function base(p: Proc) {
  return { pid: p.pid, ppid: p.ppid, uid: p.uid, comm: p.comm, exe: { ...p.exe } };
}

function comm(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1).slice(0, 15);
}

export function* generateEvents(o: GenOptions): Generator<KrsiEvent> {
  const rnd = mulberry32(o.seed ?? 1);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)];
  const pidMax = o.pidMax ?? 4_194_304;
  const concurrency = o.concurrency ?? 400;
  const attackEvery = o.attackEvery ?? 50_000;
  const snapshotEvery = o.snapshotEvery ?? 20_000;
  let ts = o.startTs ?? 1_000_000_000_000;
  let nextPid = 1000;
  let nextTmpIno = 5_000_000;
  let chain = 0;
  const loaded = new Set(MODULES);

  const daemons: Proc[] = DAEMONS.map((b, i) => ({ pid: i === 0 ? 1 : 300 + i, ppid: i === 0 ? 0 : 1, uid: 0, comm: comm(b.path), exe: { path: b.path, dev: DISK, ino: b.ino } }));
  const krsi: Proc = { pid: 900, ppid: 1, uid: 0, comm: 'krsi', exe: { path: '/usr/bin/node', dev: DISK, ino: 1_300_900 } };
  const newPid = () => {
    nextPid = nextPid >= pidMax ? 1000 : nextPid + 1;
    return nextPid;
  };

  // fork a child of `parent` and run `body` in it; the child is created by the fork step itself
  const lifeScript = (parent: Proc, body: (child: Proc) => Step[]): Script => {
    const child: Proc = { ...parent, pid: 0, ppid: parent.pid, exe: { ...parent.exe } };
    const fork: Step = () => {
      child.pid = newPid();
      return { type: 'fork', child_pid: child.pid } as never;
    };
    // the fork event is the parent's; the rest are the child's
    const steps: Step[] = [fork, ...body(child)];
    return { proc: parent, steps, i: 0, child } as Script & { child: Proc };
  };
  const exec = (p: Proc, b: { path: string; ino: number; dev?: number }, env?: Record<string, string>, argv?: string[]): Step => () => {
    p.exe = { path: b.path, dev: b.dev ?? DISK, ino: b.ino };
    p.comm = comm(b.path);
    return { type: 'exec', filename: b.path, argv: argv ?? [comm(b.path)], ...(env ? { env } : {}) } as never;
  };
  const mprotect = (prot?: number): Step => () =>
    ({ type: 'mprotect', start: 0x7f0000000000 + int(0, 0xffff) * 4096, len: 4096 * int(1, 64), prot: prot ?? pick([1, 1, 3, 3, 3, 5, 5, 0]) }) as never;
  const unlinkTmp = (): Step => () => {
    const ino = nextTmpIno++;
    return { type: 'unlink', path: `/tmp/tmp.${ino.toString(36)}`, target: { dev: TMPFS, ino, nlink: 0 } } as never;
  };
  const exit = (code = 0): Step => () => ({ type: 'exit', code }) as never;

  const ordinary = (): Script => {
    const parent = pick(daemons);
    return lifeScript(parent, (c) => {
      const steps: Step[] = [];
      if (parent !== daemons[0] && rnd() < 0.6) c.uid = 1000 + int(0, 3);
      if (rnd() < 0.8) steps.push(exec(c, pick(BINS)));
      for (let k = int(1, 12); k > 0; k--) steps.push(mprotect());
      for (let k = int(0, 4); k > 0; k--) steps.splice(int(1, steps.length), 0, unlinkTmp());
      steps.push(exit(rnd() < 0.95 ? 0 : int(1, 2)));
      return steps;
    });
  };

  const moduleLoad = (name: string, hide: boolean): Script =>
    lifeScript(pick(daemons), (c) => {
      const ino = nextTmpIno++;
      return [
        exec(c, INSMOD, undefined, ['insmod', `/lib/modules/${name}.ko`]),
        () => {
          if (!hide) loaded.add(name);
          return { type: 'module_load', name, file: { dev: DISK, ino } } as never;
        },
        exit(0),
      ];
    });

  const attack = (kind: ChainKind): Script => {
    const parent = daemons[2];
    switch (kind) {
      case 'self_delete':
        return lifeScript(parent, (c) => {
          const ino = nextTmpIno++;
          const path = `/tmp/.cache/kworker${ino % 97}`;
          return [exec(c, { path, ino, dev: TMPFS }), mprotect(5), () => ({ type: 'unlink', path, target: { dev: TMPFS, ino, nlink: 0 } }) as never, mprotect(3), exit(0)];
        });
      case 'replace_binary': {
        // one process runs vim; dpkg (another process) unlinks /usr/bin/vim while it runs
        const vim = BINS.find((b) => b.path === '/usr/bin/vim')!;
        return lifeScript(parent, (c) => [
          exec(c, BINS.find((b) => b.path === '/usr/bin/dpkg')!, undefined, ['dpkg', '-i', 'vim.deb']),
          () => ({ type: 'unlink', path: vim.path, target: { dev: DISK, ino: vim.ino, nlink: 0 } }) as never,
          exit(0),
        ]);
      }
      case 'ld_preload_wx':
      case 'ld_preload':
        return lifeScript(parent, (c) => {
          const steps = [exec(c, BINS.find((b) => b.path === '/usr/bin/ssh')!, { LD_PRELOAD: '/tmp/.l/libhook.so' }), mprotect(3)];
          if (kind === 'ld_preload_wx') steps.push(mprotect(7));
          steps.push(mprotect(5), exit(0));
          return steps;
        });
      case 'mprotect_flood':
        return lifeScript(parent, (c) => {
          const steps: Step[] = [exec(c, { path: '/tmp/jit', ino: nextTmpIno++, dev: TMPFS })];
          for (let k = 0; k < 120; k++) steps.push(mprotect(k % 10 === 0 ? 7 : 3));
          steps.push(mprotect(6), exit(0));
          return steps;
        });
      case 'hidden_module':
        return moduleLoad(pick(ROOTKITS), true);
      case 'listed_module':
        return moduleLoad(pick(LEGIT_LOADS), false);
      case 'vulnerable_exec':
        return lifeScript(parent, (c) => [exec(c, VULN, undefined, ['pkexec']), mprotect(), exit(127)]);
    }
  };

  const running: (Script & { child?: Proc })[] = [];
  for (let k = 0; k < concurrency; k++) running.push(ordinary());
  let snapshotDue = false;
  for (let n = 0; n < o.count; n++) {
    ts += Math.floor(-Math.log(1 - rnd()) * 8000); // exponential gaps, mean 8 us
    if (attackEvery && n > 0 && n % attackEvery === 0) running.push(attack(CHAINS[chain++ % CHAINS.length]));
    if (n > 0 && n % snapshotEvery === 0) snapshotDue = true;
    if (snapshotDue) {
      snapshotDue = false;
      yield { ts, type: 'module_list', ...base(krsi), modules: [...loaded] } as KrsiEvent;
      continue;
    }
    if (rnd() < 0.0001) running.push(moduleLoad(pick(LEGIT_LOADS), false));
    const idx = Math.floor(rnd() * running.length);
    const s = running[idx];
    const step = s.steps[s.i++];
    const who = s.i === 1 ? s.proc : s.child!;
    const body = step(who)!;
    yield { ts, type: body.type, ...base(who), ...body } as KrsiEvent;
    if (s.i >= s.steps.length) {
      // a finished script is replaced by a new ordinary one (attack chains are extra)
      running[idx] = running[running.length - 1];
      running.pop();
      if (running.length < concurrency) running.push(ordinary());
    }
  }
}

/** the same stream in arrays of `size` events */
export function* generateBatches(o: GenOptions, size = 4096): Generator<KrsiEvent[]> {
  let batch: KrsiEvent[] = [];
  for (const ev of generateEvents(o)) {
    batch.push(ev);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length) yield batch;
}

/** writes a generated log as JSON Lines ('-' = stdout); resolves with the number of events */
export async function writeJsonl(path: string, o: GenOptions): Promise<number> {
  const out: NodeJS.WritableStream = path === '-' ? process.stdout : createWriteStream(path);
  let n = 0;
  for (const batch of generateBatches(o)) {
    n += batch.length;
    let text = '';
    for (const ev of batch) text += JSON.stringify(ev) + '\n';
    if (!out.write(text)) await new Promise((r) => out.once('drain', r));
  }
  if (path !== '-') await new Promise<void>((res) => out.end(res));
  return n;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { parseArgs } = await import('node:util');
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '100000' },
      seed: { type: 'string', default: '1' },
      'attack-every': { type: 'string' },
      output: { type: 'string', short: 'o', default: '-' },
    },
  });
  await writeJsonl(values.output!, {
    count: Number(values.events),
    seed: Number(values.seed),
    attackEvery: values['attack-every'] === undefined ? undefined : Number(values['attack-every']),
  });
}
