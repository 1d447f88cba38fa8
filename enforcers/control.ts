// The control socket of a running `krsi run` in enforce mode: `krsi verdicts add|rm|clear|list` send their
// change here and the daemon (exempt from its own self-protection) applies it to the pinned maps and the
// store. Unix socket /run/krsi/control.sock in a root-owned 0700 directory; peers other than uid 0 are
// refused (SO_PEERCRED). One JSON line in, one JSON line out per connection. No krsi run alive: no socket
// (or a stale one nobody answers), and `krsi verdicts` writes the maps itself.
import koffi from 'koffi';
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Verdict } from '../engine/types.ts';
import { childLogger } from '../lib/logger.ts';
import type { Enforcer, KConfig } from './enforcer.ts';
import type { Entry } from './verdict-keys.ts';

const log = childLogger('control');

export const CONTROL_SOCK = process.env.KRSI_CONTROL_SOCK ?? '/run/krsi/control.sock';
const MAX_REQUEST = 1 << 20;

export type ControlRequest =
  | { cmd: 'ping' }
  | { cmd: 'add'; verdict: Verdict }
  | { cmd: 'rm'; ids: string[] }
  | { cmd: 'clear' }
  | { cmd: 'dump' };

export type ControlResponse =
  | { ok: false; error: string }
  | { ok: true; pid?: number; applied?: boolean; missing?: string[]; removed?: number; entries?: Entry[]; config?: KConfig };

// SO_PEERCRED of an accepted connection: { pid, uid, gid }
type GetSockOpt = (fd: number, level: number, name: number, buf: Buffer, len: number[]) => number;
let getsockopt: GetSockOpt | undefined;
function peer(s: Socket): { pid: number; uid: number } | undefined {
  const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return undefined;
  getsockopt ??= koffi.load('libc.so.6').func('int getsockopt(int fd, int level, int name, _Out_ uint8_t *buf, _Inout_ uint32_t *len)') as unknown as GetSockOpt;
  const buf = Buffer.alloc(12);
  if (getsockopt(fd, 1 /* SOL_SOCKET */, 17 /* SO_PEERCRED */, buf, [12]) !== 0) return undefined;
  return { pid: buf.readInt32LE(0), uid: buf.readUInt32LE(4) };
}

/** the socket's directory: created 0700; an existing one must be root's, a real directory, 0700 */
function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== 0) throw new Error(`control socket: ${dir} is not a directory owned by root: refusing to serve there`);
  if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
}

function handle(enf: Enforcer, req: ControlRequest): ControlResponse {
  switch (req.cmd) {
    case 'ping':
      return { ok: true, pid: process.pid };
    case 'add':
      return { ok: true, applied: enf.apply(req.verdict) };
    case 'rm':
      return { ok: true, missing: req.ids.filter((id) => !enf.remove(id)) };
    case 'clear': {
      const ids = enf.store.list().map((s) => s.verdict.id);
      for (const id of ids) enf.remove(id);
      return { ok: true, removed: ids.length };
    }
    case 'dump': {
      const d = enf.maps.dump();
      return { ok: true, entries: d.entries, config: d.config };
    }
    default:
      return { ok: false, error: `unknown command ${JSON.stringify((req as { cmd?: unknown }).cmd)}` };
  }
}

export interface ControlServer {
  path: string;
  close(): Promise<void>;
}

/** serve the control socket for this enforcer; throws when another krsi run answers on it */
export async function serveControl(enf: Enforcer, path = CONTROL_SOCK): Promise<ControlServer> {
  privateDir(dirname(path));
  if ((await controlRequest({ cmd: 'ping' }, path).catch(() => undefined))?.ok) throw new Error(`control socket ${path}: another krsi run is serving it`);
  try { unlinkSync(path); } catch { /* none: fine */ }
  const server: Server = createServer((s) => {
    const who = peer(s);
    if (!who || who.uid !== 0) {
      log.warn({ peer: who }, 'control socket: refused a peer that is not root');
      s.end(JSON.stringify({ ok: false, error: 'only root may use the krsi control socket' }) + '\n');
      s.resume(); // read the peer's FIN, or the connection (and server.close()) never ends
      return;
    }
    // a process under a tgid verdict (quarantined, or the child of one) may not lift verdicts: quarantine
    // would otherwise stop its exec and mprotect but not a 'clear' through this socket
    if (enf.underVerdict(who.pid)) {
      log.warn({ peer: who }, 'control socket: refused a process that is under a deny_tgid verdict');
      s.end(JSON.stringify({ ok: false, error: 'a process under a krsi verdict may not use the control socket' }) + '\n');
      s.resume();
      return;
    }
    let buf = '';
    s.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      if (buf.length > MAX_REQUEST) { s.destroy(); return; }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let res: ControlResponse;
      try {
        const req = JSON.parse(buf.slice(0, nl)) as ControlRequest;
        res = handle(enf, req);
        // lifting verdicts is what an intruder would do: a warning, not an info line
        log[req.cmd === 'rm' || req.cmd === 'clear' ? 'warn' : 'info']({ cmd: req.cmd, peer: who.pid, ...(req.cmd === 'add' ? { verdict: req.verdict.id } : req.cmd === 'rm' ? { ids: req.ids } : {}) }, 'control request');
      } catch (e) {
        res = { ok: false, error: (e as Error).message };
      }
      s.end(JSON.stringify(res) + '\n');
    });
    s.on('error', () => {});
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(path, () => { server.off('error', rej); res(); });
  });
  chmodSync(path, 0o600);
  log.info({ path }, 'control socket: krsi verdicts changes are applied by this process');
  return {
    path,
    close: () => new Promise<void>((res) => server.close(() => res())),
  };
}

/** send one request to a running krsi run; undefined when none serves `path` (no socket, or a stale one) */
export function controlRequest(req: ControlRequest, path = CONTROL_SOCK, timeoutMs = 15_000): Promise<ControlResponse | undefined> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`control socket ${path}: no answer within ${timeoutMs} ms`)); }, timeoutMs);
    s.setEncoding('utf8');
    s.on('connect', () => s.write(JSON.stringify(req) + '\n'));
    s.on('data', (d: string) => (buf += d));
    s.on('end', () => {
      clearTimeout(timer);
      try { resolve(JSON.parse(buf) as ControlResponse); } catch { reject(new Error(`control socket ${path}: bad answer ${JSON.stringify(buf.slice(0, 200))}`)); }
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') resolve(undefined);
      else reject(e);
    });
  });
}
