// supported(): the probe agrees with what the host has, and `krsi status` prints it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { needLiveBpf } from '../helpers/prereq.ts';
import { supported } from '../../bpf/support.ts';
import { formatStatus } from '../../cli/commands/status.ts';
import { krsiSync } from '../helpers/krsi.ts';

describe('supported()', () => {
  test('is cached and consistent with the host', () => {
    const s = supported();
    assert.equal(supported(), s);
    assert.equal(s.root, process.getuid?.() === 0);
    assert.equal(s.btf, existsSync('/sys/kernel/btf/vmlinux'));
    assert.equal(s.modules, existsSync('/proc/modules'));
    assert.equal(s.live, s.root && s.libbpf && s.btf && s.ringbuf && s.tracepoints && s.tpBtf);
    assert.equal(s.enforce, s.live && s.lsmLoads);
    // every missing capability is explained
    if (!s.lsmLoads) assert.ok(s.reasons.some((r) => /LSM programs do not load|kernel probes skipped/.test(r)), s.reasons.join('\n'));
    if (!s.modules) assert.ok(s.reasons.some((r) => /module support/.test(r)));
  });

  test('kernel probes succeed where live BPF works', { skip: needLiveBpf() }, () => {
    const s = supported();
    assert.equal(s.ringbuf, true, s.reasons.join('\n'));
    assert.equal(s.tracepoints, true, s.reasons.join('\n'));
    assert.equal(s.tpBtf, true, s.reasons.join('\n'));
    assert.match(s.libbpfVersion ?? '', /^1\.\d+/);
  });

  test('formatStatus lists every probe and the reasons', () => {
    const text = formatStatus({
      kernel: 'k', root: true, libbpf: false, btf: true, ringbuf: false, tracepoints: false, tpBtf: false, lsmActive: false, lsmLoads: false,
      modules: false, live: false, enforce: false, reasons: ['libbpf.so.1 not found: install the Debian package libbpf1'],
    });
    for (const k of ['root', 'libbpf', 'btf', 'ringbuf', 'tracepoints', 'tpBtf', 'lsmActive', 'lsmLoads', 'modules']) assert.match(text, new RegExp(`^  ${k} `, 'm'));
    assert.match(text, /live signals: unavailable; enforcement: unavailable/);
    assert.match(text, /- libbpf\.so\.1 not found: install the Debian package libbpf1/);
  });

  test('krsi status --format json prints the probe and exits 0', () => {
    const r = krsiSync(['status', '--format', 'json']);
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(typeof s.lsmLoads, 'boolean');
    assert.ok(Array.isArray(s.reasons));
  });
});
