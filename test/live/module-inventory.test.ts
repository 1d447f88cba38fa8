// The module inventory on this host (root): the kernel view's iterator reads signals.bpf.c's module_seen
// through a real iterator link (a record that is not a readable struct module reads as unreadable and off the
// list, never as a module), and the signals started here raise no module_inventory on a clean host (without
// module support, as this host's kernel, the inventory says it is unavailable). Real hiding: the VM
// (test/vm/evasion/modules.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { needLiveBpf } from '../helpers/prereq.ts';
import type { KrsiEvent } from '../../signals/events.ts';

test('the kernel module view: an iterator link over module_seen reads each entry (a bogus pointer: unreadable, not linked)', { skip: needLiveBpf() }, async (t) => {
  const { BpfObject, BPF_NOEXIST } = await import('../../bpf/libbpf.ts');
  const { ensureObject } = await import('../../bpf/build.ts');
  const { decodeModuleViews, encodeModuleSeen } = await import('../../bpf/abi.ts');
  const { moduleLoadUnavailable } = await import('../../signals/live.ts');
  const obj = BpfObject.open(ensureObject('signals'));
  try {
    // the tracepoint programs need module support; the iterator only struct module in BTF
    if (moduleLoadUnavailable()) for (const p of ['krsi_module_load', 'krsi_module_unload']) obj.setAutoload(p, false);
    try {
      obj.load();
    } catch (e) {
      // some kernels (this dev host's) refuse tracing programs of the iterator and fentry kinds: the VM runs this
      if ((e as { errno?: number }).errno === 1) return t.skip(`this kernel refuses iterator programs: ${(e as Error).message}`);
      throw e;
    }
    assert.deepEqual(decodeModuleViews(obj.iterateMap('krsi_module_iter', 'module_seen')), [], 'an empty map: no records');
    const key = Buffer.alloc(8);
    key.writeBigUInt64LE(0x1000n); // no struct module there: the probe reads fail
    obj.map('module_seen').update(key, encodeModuleSeen('krsi_fake'), BPF_NOEXIST);
    const views = decodeModuleViews(obj.iterateMap('krsi_module_iter', 'module_seen'));
    assert.deepEqual(views.map(({ addr, recorded, readable, linked, sysfs, seeded, name }) => ({ addr, recorded, readable, linked, sysfs, seeded, name })), [
      { addr: '1000', recorded: 'krsi_fake', readable: false, linked: false, sysfs: false, seeded: true, name: '' },
    ]);
    // a second read walks the map again (each read is a fresh iterator)
    assert.equal(decodeModuleViews(obj.iterateMap('krsi_module_iter', 'module_seen')).length, 1);
  } finally {
    obj.close();
  }
});

test('live signals on this host: the inventory at start finds nothing (or says why it cannot run)', { skip: needLiveBpf() }, async () => {
  const { startSignals } = await import('../../signals/live.ts');
  const live = await startSignals({ lostInterval: 0, modulesInterval: 0, inventoryInterval: 500, inventoryConfirmMs: 100 });
  const seen: KrsiEvent[] = [];
  const sub = live.events$.subscribe((e) => {
    if (e.type === 'module_inventory') seen.push(e);
  });
  try {
    await new Promise((r) => setTimeout(r, 1500));
  } finally {
    sub.unsubscribe();
    await live.stop();
  }
  if (!existsSync('/proc/modules')) assert.match(live.unavailable.module_inventory ?? '', /\/proc\/modules is missing/);
  assert.deepEqual(seen, [], 'a clean host: no view disagrees');
});
