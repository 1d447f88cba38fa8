// krsi verdicts list|add|rm|clear: the persisted verdict store (lmdb under the state dir) and the
// pinned enforcement maps it feeds. Exit codes: 0 ok; 1 no such verdict / bad subject; 2 usage;
// 3 enforcement unavailable (no BPF LSM, not root).
import type { Command } from 'commander';
import { Option } from 'commander';
import { Enforcer, PinnedMapWriter, pinnedVerdictWriter, type Entry, type KConfig } from '../../enforcers/index.ts';
import { VerdictStore, bootTimeNs, now as clockNow, stateDir, type StoredVerdict } from '../../enforcers/store.ts';
import { ENFORCE_PIN_DIR, MAP_PINS, kernelFileId } from '../../enforcers/maps.ts';
import { enforcementLoaded } from '../../enforcers/programs.ts';
import { CONTROL_SOCK, controlRequest, type ControlRequest, type ControlResponse } from '../../enforcers/control.ts';
import { VALID_SUBJECTS, verdictId } from '../../engine/enforcement/semantics.ts';
import { formatDuration, parseDuration } from '../../lib/duration.ts';
import { formatSubject } from '../../engine/actions.ts';
import type { Subject, Verdict, VerdictOp } from '../../engine/types.ts';

const OPS: VerdictOp[] = ['exec', 'mprotect_exec', 'module_load', 'quarantine', 'kill'];

const HELP_MAPS = `
The maps are pinned under ${ENFORCE_PIN_DIR}/ and stay readable without krsi, e.g.:
  bpftool map dump pinned ${MAP_PINS.deny_tgid}
  bpftool map dump pinned ${MAP_PINS.deny_inode}
  bpftool map dump pinned ${MAP_PINS.config}
(keys/values: struct krsi_inode_key, __u32 tgid, struct krsi_verdict {expires, ops, rule_id} in bpf/krsi.h;
 expires is a CLOCK_BOOTTIME deadline in ns, 0 = never; ops bits 1 exec, 2 mprotect_exec, 4 module_load)
State: --state DIR, else $KRSI_STATE_DIR, else /var/lib/krsi (verdicts.mdb).
While a \`krsi run\` enforces, add/rm/clear (and list's map contents) go through its control socket
(${CONTROL_SOCK}, root only) and that process applies them to its maps and store (--state is then its
own); with self-protection on, other processes (bpftool included) cannot open krsi's maps.`;

function fail(msg: string, code: number): never {
  process.stderr.write(`krsi verdicts: ${msg}\n`);
  process.exit(code);
}

/** time left until a deadline */
function timeLeft(ns: number): string {
  return ns <= 0 ? 'expired' : formatDuration(ns, { approx: true });
}

function entryText(e: Entry, ruleName: (id: number) => string | undefined): string {
  const k = e.key.map === 'deny_tgid' ? `tgid ${e.key.tgid}` : `${e.key.dev}:${e.key.ino}`;
  const boot = bootTimeNs();
  const exp = e.value.expires === 0 ? 'never' : timeLeft(e.value.expires - boot);
  return `  ${e.key.map.padEnd(12)} ${k.padEnd(24)} ops ${e.value.ops} expires ${exp} rule_id ${e.value.rule_id}${e.value.rule_id ? ` (${ruleName(e.value.rule_id) ?? '?'})` : ''}`;
}

/** the running krsi run's answer, or undefined when none serves the control socket */
async function daemon(req: ControlRequest): Promise<Extract<ControlResponse, { ok: true }> | undefined> {
  let r: ControlResponse | undefined;
  try {
    r = await controlRequest(req);
  } catch (e) {
    fail(`control socket ${CONTROL_SOCK}: ${(e as Error).message}`, 1);
  }
  if (r && !r.ok) fail(`krsi run (control socket): ${r.error}`, 1);
  return r;
}

/** the pinned maps (config left alone), when enforcement is loaded */
function pinnedWriter(): PinnedMapWriter | undefined {
  return enforcementLoaded() ? pinnedVerdictWriter() : undefined;
}

async function withEnforcer<T>(o: { state?: string }, f: (e: Enforcer) => T): Promise<T> {
  let enf: Enforcer;
  try {
    enf = await Enforcer.open({ stateDir: stateDir(o.state), selfPid: process.pid, manageConfig: false });
  } catch (e) {
    const err = e as Error & { exitCode?: number };
    fail(err.message, err.exitCode ?? 3);
  }
  try {
    enf.restore();
    return f(enf);
  } finally {
    await enf.close();
  }
}

function parseSubject(o: { pid?: string; inode?: string; module?: string }, op: VerdictOp): Subject {
  const given = [o.pid, o.inode, o.module].filter((x) => x !== undefined).length;
  if (given !== 1) fail('give exactly one subject: --pid N, --inode PATH or --module NAME', 2);
  if (o.pid !== undefined) {
    const pid = Number(o.pid);
    if (!Number.isSafeInteger(pid) || pid <= 0) fail(`--pid ${o.pid}: not a pid`, 2);
    return { kind: 'pid', pid };
  }
  if (o.inode !== undefined) {
    // the {dev, ino} the LSM hooks see (stat()'s device is the layer's on overlayfs)
    let id;
    try { id = kernelFileId(o.inode); } catch (e) { fail(`--inode ${o.inode}: ${(e as Error).message}`, 1); }
    return op === 'module_load' ? { kind: 'module_file', dev: id.dev, ino: id.ino } : { kind: 'inode', dev: id.dev, ino: id.ino };
  }
  return { kind: 'module', name: o.module! };
}

function printStored(list: StoredVerdict[], json: boolean): void {
  const n = clockNow();
  for (const s of list) {
    const v = s.verdict;
    if (json) { process.stdout.write(JSON.stringify({ kind: 'verdict', ...v, deadline: s.deadline }) + '\n'); continue; }
    const left = s.deadline === 0 ? 'never' : s.boot_id === n.bootId ? timeLeft(s.deadline - n.boot) : timeLeft((s.expires_wall - n.wall) * 1e6);
    process.stdout.write(`  ${v.id}\n    rule ${v.rule}  op ${v.op}  ${formatSubject(v.subject)}  expires ${left}\n`);
  }
}

export function register(program: Command): void {
  const cmd = program
    .command('verdicts')
    .description('manage the persisted verdicts and the pinned enforcement maps (list|add|rm|clear)')
    .addHelpText('after', HELP_MAPS);
  const state = () => new Option('--state <dir>', 'state directory (default $KRSI_STATE_DIR or /var/lib/krsi)');

  cmd
    .command('list', { isDefault: true })
    .description('print the stored verdicts and the live contents of the pinned maps')
    .addOption(state())
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .addHelpText('after', HELP_MAPS)
    .action(async (o: { state?: string; format: 'text' | 'json' }) => {
      const store = VerdictStore.open(stateDir(o.state));
      try {
        const list = store.list();
        const json = o.format === 'json';
        if (!json) process.stdout.write(`verdicts in ${store.path}: ${list.length}\n`);
        printStored(list, json);
        let dump: { entries: Entry[]; config?: KConfig } | undefined;
        const served = await daemon({ cmd: 'dump' });
        if (served) dump = { entries: served.entries ?? [], config: served.config };
        else try {
          const w = pinnedWriter();
          if (w) { dump = w.dump(); w.close(); }
        } catch (e) {
          if (!json) process.stdout.write(`maps: cannot read ${ENFORCE_PIN_DIR}: ${(e as Error).message}\n`);
          return;
        }
        if (json) {
          for (const e of dump?.entries ?? []) process.stdout.write(JSON.stringify({ kind: 'map_entry', map: e.key.map, key: e.key, value: e.value }) + '\n');
          if (dump?.config) process.stdout.write(JSON.stringify({ kind: 'config', ...dump.config }) + '\n');
          return;
        }
        if (!dump) { process.stdout.write(`maps: enforcement not loaded (nothing pinned under ${ENFORCE_PIN_DIR})\n`); return; }
        const c = dump.config;
        process.stdout.write(`maps (${ENFORCE_PIN_DIR}): ${dump.entries.length} entries` +
          (c ? `; config krsi_tgid ${c.krsi_tgid} mprotect_limit ${c.mprotect_limit} module_mode ${c.module_mode} enforce ${c.enforce} flags ${c.flags ?? 0}` : '') + '\n');
        for (const e of dump.entries) process.stdout.write(entryText(e, (id) => store.ruleName(id)) + '\n');
      } finally {
        await store.close();
      }
    });

  cmd
    .command('add')
    .description('deny an operation for a subject now, in the kernel and in the store')
    .addOption(new Option('--op <op>', 'operation to deny').choices(OPS).makeOptionMandatory())
    .option('--pid <n>', 'subject: a process (tgid)')
    .option('--inode <path>', 'subject: the file at PATH (its dev/ino as the kernel sees it, overlayfs included); with --op module_load, a module file')
    .option('--module <name>', 'subject: a kernel module by name (resolved to its .ko under /lib/modules/$(uname -r))')
    .option('--ttl <duration>', 'expiry, e.g. 30s, 10m, 1h; 0 = never', '10m')
    .option('--rule <id>', 'rule name recorded with the verdict', 'manual')
    .addOption(state())
    .addHelpText('after', HELP_MAPS)
    .action(async (o: { op: VerdictOp; pid?: string; inode?: string; module?: string; ttl: string; rule: string; state?: string }) => {
      const subject = parseSubject(o, o.op);
      if (!VALID_SUBJECTS[o.op].includes(subject.kind)) fail(`--op ${o.op} cannot apply to a ${subject.kind} subject (it can: ${VALID_SUBJECTS[o.op].join(', ')})`, 2);
      let ttl: number;
      try { ttl = o.ttl === '0' ? 0 : parseDuration(o.ttl); } catch (e) { fail(`--ttl: ${(e as Error).message}`, 2); }
      const ts = bootTimeNs();
      const v: Verdict = { id: verdictId(o.rule, o.op, subject), rule: o.rule, op: o.op, subject, ts, ttl_ns: ttl, expires: ttl ? ts + ttl : 0, mode: 'enforce' };
      let ok = false;
      const served = await daemon({ cmd: 'add', verdict: v });
      if (served) ok = served.applied === true;
      else try {
        ok = await withEnforcer(o, (enf) => enf.apply(v));
      } catch (e) {
        fail((e as Error).message, 1);
      }
      if (!ok) fail(`${v.id}: not applied (pid 1, krsi itself, a process that is gone, or a module with no file here; see the log line above)`, 1);
      process.stdout.write(`${v.id}\n`);
    });

  cmd
    .command('rm')
    .description('remove a verdict by id from the kernel maps and the store')
    .argument('<id...>', 'verdict ids (krsi verdicts list)')
    .addOption(state())
    .action(async (ids: string[], o: { state?: string }) => {
      let missing: string[] = [];
      const served = await daemon({ cmd: 'rm', ids });
      if (served) missing = served.missing ?? [];
      else if (enforcementLoaded()) {
        missing = await withEnforcer(o, (enf) => ids.filter((id) => !enf.remove(id)));
      } else {
        const store = VerdictStore.open(stateDir(o.state));
        missing = ids.filter((id) => !store.remove(id));
        await store.close();
      }
      if (missing.length) fail(`no such verdict: ${missing.join(', ')}`, 1);
    });

  cmd
    .command('clear')
    .description('remove every stored verdict from the kernel maps and the store')
    .addOption(state())
    .action(async (o: { state?: string }) => {
      let n: number;
      const served = await daemon({ cmd: 'clear' });
      if (served) n = served.removed ?? 0;
      else if (enforcementLoaded()) {
        n = await withEnforcer(o, (enf) => {
          const ids = enf.store.list().map((s) => s.verdict.id);
          for (const id of ids) enf.remove(id);
          return ids.length;
        });
      } else {
        const store = VerdictStore.open(stateDir(o.state));
        n = store.clear();
        await store.close();
      }
      process.stdout.write(`removed ${n} verdict(s)\n`);
    });
}
