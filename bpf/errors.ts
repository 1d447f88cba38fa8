// A failed libbpf or bpf() call as an error: the operation, the errno and libbpf's text for it.
import koffi from 'koffi';
import { N, cstr } from './native.ts';

/** a failed libbpf / bpf() operation: errno and libbpf_strerror text */
export class BpfError extends Error {
  readonly errno: number;
  readonly op: string;
  constructor(op: string, errno: number, detail?: string) {
    errno = Math.abs(errno);
    super(`${op}: ${strerror(errno)}${detail ? ` (${detail})` : ''}`);
    this.name = 'BpfError';
    this.errno = errno;
    this.op = op;
  }
}

function strerror(errno: number): string {
  const buf = Buffer.alloc(256);
  try {
    const n = N();
    if (n.libbpf_strerror(errno, buf, buf.length) === 0 || buf[0]) return cstr(buf);
  } catch {
    // no libbpf: fall through
  }
  const name = Object.entries(koffi.os.errno).find(([, v]) => v === errno)?.[0];
  return name ? `${name} (errno ${errno})` : `errno ${errno}`;
}

/** a negative return is -errno: thrown as BpfError */
export function check(op: string, ret: number, detail?: string): number {
  if (ret < 0) throw new BpfError(op, -ret, detail);
  return ret;
}

/** a NULL pointer return: thrown as BpfError with the errno libbpf left */
export function nonNull<T>(op: string, p: T | null, detail?: string): T {
  if (p === null || p === undefined || p === 0n) throw new BpfError(op, koffi.errno() || 22, detail);
  return p;
}
