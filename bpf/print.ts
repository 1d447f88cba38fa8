// libbpf's log into krsi's logger (prefix `libbpf`): warnings as warn, info as info, debug as debug,
// everything as debug inside quietly().
import koffi from 'koffi';
import { childLogger } from '../lib/logger.ts';
import type { Native } from './native.ts';

const log = childLogger('libbpf');
let printCb: bigint | undefined;
let quietDepth = 0;

// KRSI_LIBBPF_PRINT_BUF (bytes) is a test hook: a tiny buffer exercises the re-format path
const printBuf = Buffer.alloc(Number(process.env.KRSI_LIBBPF_PRINT_BUF) || 64 * 1024);
const MAX_LINES = 1200; // a verifier log can run to megabytes: keep its head and its tail (where the error is)

/** route libbpf's print callback to the logger (once, when the library is bound) */
export function installPrint(n: Native): void {
  // va_list decays to a pointer when passed: hand it to vsnprintf as is
  const PrintFn = koffi.proto('int krsi_libbpf_print(int level, const char *fmt, void *ap)');
  printCb = koffi.register((level: number, fmt: string, ap: bigint) => {
    const lvl = quietDepth > 0 ? 'debug' : level === 0 ? 'warn' : level === 1 ? 'info' : 'debug';
    if (!log.isLevelEnabled(lvl)) return 0;
    // va_copy by hand (x86-64: a 24-byte struct) so a message longer than printBuf can be formatted again
    const apCopy = process.arch === 'x64' ? Buffer.from(new Uint8Array(koffi.view(ap, 24))) : undefined;
    let out = printBuf;
    let len = n.vsnprintf(out, out.length, fmt, ap) as number;
    if (len >= out.length && apCopy) {
      out = Buffer.alloc(len + 1);
      len = n.vsnprintf(out, out.length, fmt, apCopy) as number;
    }
    const text = out.toString('utf8', 0, Math.max(0, Math.min(len, out.length - 1))).replace(/\n+$/, '');
    let lines = text.split('\n');
    if (lines.length > MAX_LINES) {
      const head = lines.slice(0, 200);
      const tail = lines.slice(-(MAX_LINES - 200));
      lines = [...head, `... ${lines.length - head.length - tail.length} lines omitted ...`, ...tail];
    }
    for (const line of lines) log[lvl](line.replace(/^libbpf: /, ''));
    return 0;
  }, koffi.pointer(PrintFn));
  n.libbpf_set_print(printCb);
}

/** run fn with libbpf's warnings demoted to debug (probes that are expected to fail) */
export function quietly<T>(fn: () => T): T {
  quietDepth++;
  try {
    return fn();
  } finally {
    quietDepth--;
  }
}

/** inside quietly(): a failure is expected, so libbpf's log is not pointed at */
export function isQuiet(): boolean {
  return quietDepth > 0;
}
