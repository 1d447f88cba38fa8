// The host side of the evasion VM run's areas (test/vm/evasion.test.ts): each prepares its guest inputs in
// <dir>/<area> before the boot, then registers its tests on what its guest side returned.
import type { VmKernel } from '../vm.ts';
import { area as exec } from './exec.ts';
import { area as memory } from './memory.ts';
import { area as files } from './files.ts';
import { area as modules } from './modules.ts';
import { area as quarantine } from './quarantine.ts';
import { area as workload } from './workload.ts';

export interface HostArea {
  /** build what the guest needs (static helpers, modules) into dir; a string is a skip reason */
  prepare(dir: string, kernel: VmKernel): string | undefined | Promise<string | undefined>;
  /** register this area's tests (inside the kernel's describe); result() is what the guest returned */
  register(result: () => any, kernel: VmKernel): void;
}

export const HOST_AREAS: Record<string, HostArea> = { exec, memory, files, modules, quarantine, workload };
