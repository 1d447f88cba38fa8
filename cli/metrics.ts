// Prometheus metrics of `krsi run --metrics HOST:PORT`: the one registry and every metric definition.
// Nothing here is on the event path except events() (a per-type tally in a plain object): the rest
// reads the engine, signals, hasher and enforcer stats when /metrics is scraped (one snapshot per
// scrape), and the verdict latency histograms observe the (rare) applied verdicts.
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { EVENT_TYPES, type KrsiEvent } from '../signals/events.ts';
import { EV } from '../bpf/abi.ts';
import type { LiveSignals } from '../signals/live.ts';
import type { ExeHasher, HashStats } from '../signals/hash.ts';
import type { Enforcement } from '../engine/enforcement/enforcement.ts';
import type { Engine, EngineStats } from '../engine/engine.ts';
import { bootNs } from '../signals/clock.ts';
import { childLogger } from '../lib/logger.ts';

const log = childLogger('metrics');

/** what the metrics are read from; attached by runLive once it has them */
export interface MetricsSources {
  engine: Engine;
  live: LiveSignals;
  hasher?: ExeHasher;
}

interface Snapshot {
  engine?: EngineStats;
  signals?: ReturnType<LiveSignals['stats']>;
  lost?: Record<string, number>;
  hash?: HashStats;
}

type Labels = Record<string, string>;
type Read = (s: Snapshot) => number | [Labels, number][] | undefined;

/** seconds, from 1 µs to 1 s */
const LATENCY_BUCKETS = [1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 0.25, 1];

export class KrsiMetrics {
  readonly registry = new Registry();
  private src?: MetricsSources;
  private snap: Snapshot = {};
  /** every type and kind from the start at 0: a series that appears only with its first increment hides it from rate() */
  private readonly byType: Record<string, number> = Object.fromEntries(EVENT_TYPES.map((t) => [t, 0]));
  private static readonly LOST_ZERO: Record<string, number> = Object.fromEntries(Object.keys(EV).map((k) => [k, 0]));
  readonly applySeconds: Histogram;
  readonly eventToMapSeconds: Histogram;

  constructor(o: { defaultMetrics?: boolean } = {}) {
    if (o.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    const perRule = (k: 'alerts' | 'verdicts' | 'denied' | 'errors'): Read => (s) => s.engine && Object.entries(s.engine.per_rule).map(([rule, c]) => [{ rule }, c[k]]);
    const entries = (o: Record<string, number> | undefined, label: string): [Labels, number][] | undefined => o && Object.entries(o).map(([k, v]) => [{ [label]: k }, v]);

    // counters mirrored from running totals
    this.counter('krsi_events_total', 'events into the engine, by type (kernel denied events included)', ['type'], () => entries(this.byType, 'type'));
    this.counter('krsi_events_lost_total', 'events the kernel could not hand over (ring buffer full), by kind', ['kind'], (s) => entries(s.lost, 'kind'));
    this.counter('krsi_ringbuf_records_total', 'ring buffer records drained', [], (s) => s.signals?.records);
    this.counter('krsi_ringbuf_handler_errors_total', 'ring buffer records whose handler threw', [], (s) => s.signals?.errors);
    this.counter('krsi_decode_errors_total', 'ring buffer records the decoder rejected', [], (s) => s.signals?.bad);
    this.counter('krsi_events_reordered_total', 'events whose ts was raised to keep time non-decreasing', [], (s) => s.signals?.reordered);
    this.counter('krsi_alerts_total', 'alerts, per rule', ['rule'], perRule('alerts'));
    this.counter('krsi_verdicts_total', 'verdicts, per rule', ['rule'], perRule('verdicts'));
    this.counter('krsi_denied_total', 'denied operations, per rule', ['rule'], perRule('denied'));
    this.counter('krsi_rule_errors_total', 'rule evaluations that threw, per rule', ['rule'], perRule('errors'));
    this.counter('krsi_engine_late_events_total', 'events whose ts went backwards', [], (s) => s.engine?.late);
    this.counter('krsi_engine_lost_exits_total', 'forks whose child pid was still live here (its exit was lost); its pid-keyed state was ended', [], (s) => s.engine?.lost_exits);
    this.counter('krsi_engine_no_subject_total', 'verdict actions whose event could not name the subject', [], (s) => s.engine?.no_subject);
    this.counter('krsi_process_table_evictions_total', 'process table entries evicted at capacity', [], (s) => s.engine?.procs.evictions);
    this.counter('krsi_correlation_evictions_total', 'correlation keys evicted at capacity, per rule', ['rule'], (s) => s.engine && Object.entries(s.engine.correlation).map(([rule, c]) => [{ rule }, c.evictions]));
    this.counter('krsi_correlation_expired_total', 'correlation keys expired, per rule', ['rule'], (s) => s.engine && Object.entries(s.engine.correlation).map(([rule, c]) => [{ rule }, c.expired]));
    this.counter('krsi_exe_hash_cache_hits_total', 'exec events whose sha256 came from the cache', [], (s) => s.hash?.hits);
    this.counter('krsi_exe_hash_cache_misses_total', 'executables read and hashed', [], (s) => s.hash?.misses);
    this.counter('krsi_exe_hash_bytes_total', 'bytes read for exe hashing', [], (s) => s.hash?.bytes);
    this.counter('krsi_exe_hash_failures_total', 'exec events left without sha256, by reason (their sha256_error)', ['reason'], (s) => entries(s.hash?.failures, 'reason'));
    this.counter('krsi_exe_hash_reader_restarts_total', 'exe hash reader processes killed because an answer was late by stuckMs (a file that does not answer)', [], (s) => s.hash?.restarts);

    // state sizes
    this.gauge('krsi_process_table_entries', 'processes in the engine\'s process table', [], (s) => s.engine?.procs.size);
    this.gauge('krsi_process_table_capacity', 'process table capacity', [], (s) => s.engine?.procs.cap);
    this.gauge('krsi_correlation_keys', 'live correlation keys, per rule', ['rule'], (s) => s.engine && Object.entries(s.engine.correlation).map(([rule, c]) => [{ rule }, c.keys]));
    this.gauge('krsi_enforcement_model_entries', 'entries of what the engine enforces through (replay: its model; enforcing: the kernel maps), by kind', ['kind'], (s) => s.engine && entries(s.engine.enforcement, 'kind'));
    this.gauge('krsi_exe_hash_cache_entries', 'cached exe hashes', [], (s) => s.hash?.cached);
    this.gauge('krsi_exe_hash_waiting_batches', 'event batches held back until a big executable is hashed', [], (s) => s.hash?.waiting);

    // enforcement
    this.applySeconds = new Histogram({ name: 'krsi_verdict_apply_seconds', help: 'applying a verdict: engine output -> BPF map entry (and store), when enforcing', buckets: LATENCY_BUCKETS, registers: [this.registry] });
    this.eventToMapSeconds = new Histogram({ name: 'krsi_verdict_event_to_map_seconds', help: 'the triggering event\'s kernel time -> its verdict in the BPF map, when enforcing', buckets: LATENCY_BUCKETS, registers: [this.registry] });
  }

  /** start reading from these (krsi run calls it once the engine exists) */
  attach(src: MetricsSources): void {
    this.src = src;
  }

  /** the enforcement the engine is given, with each applied verdict timed where it enters the maps */
  timed(e: Enforcement): Enforcement {
    return {
      check: (ev) => e.check(ev),
      denied: (ev) => e.denied(ev),
      sizes: () => e.sizes(),
      apply: (v, descendants) => {
        const t0 = process.hrtime.bigint();
        const ok = e.apply(v, descendants);
        if (ok) {
          this.applySeconds.observe(Number(process.hrtime.bigint() - t0) / 1e9);
          this.eventToMapSeconds.observe(Math.max(0, bootNs() - v.ts) / 1e9);
        }
        return ok;
      },
    };
  }

  /** the kill op's SIGKILLs from user space (enforcers/kill.ts), by result: killed, gone (exited first),
   *  reused (the pid is another process's now: not sent), exempt, failed */
  kills(read: () => Record<string, number>): void {
    this.counter('krsi_kills_total', 'SIGKILLs of the kill verdict op sent from krsi, by result (the kernel kills at the next guarded operation too: its denied records, op kill)', ['result'],
      () => { try { return Object.entries(read()).map(([result, n]) => [{ result }, n]); } catch { return undefined; } });
  }

  /** self-protection (enforcers/protect.ts, when krsi run protects itself): attempts per reason, read from its counter map */
  tamper(read: () => Record<string, number>): void {
    this.counter('krsi_tamper_total', 'attempts on krsi itself, per reason: refused by self-protection (TAMPER_SIGNAL: reported only); lost: records the ring buffer could not take', ['reason'],
      () => { try { return Object.entries(read()).map(([reason, n]) => [{ reason }, n]); } catch { return undefined; } });
  }

  /** tally events by type (called per batch on the event path: a plain object increment per event) */
  events(batch: readonly KrsiEvent[]): void {
    for (const e of batch) this.byType[e.type] = (this.byType[e.type] ?? 0) + 1;
  }

  /** the exposition text (one snapshot of every source) */
  async text(): Promise<string> {
    const src = this.src;
    this.snap = src
      ? { engine: src.engine.stats(), signals: src.live.stats(), lost: { ...KrsiMetrics.LOST_ZERO, ...safe(() => src.live.lostByKind()) }, hash: src.hasher?.stats() }
      : {};
    return this.registry.metrics();
  }

  private counter(name: string, help: string, labelNames: string[], read: Read): void {
    const self = this;
    new Counter({
      name, help, labelNames, registers: [this.registry],
      collect() {
        this.reset();
        const v = read(self.snap);
        if (typeof v === 'number') this.inc(v);
        else for (const [l, n] of v ?? []) this.inc(l, n);
      },
    });
  }

  private gauge(name: string, help: string, labelNames: string[], read: Read): void {
    const self = this;
    new Gauge({
      name, help, labelNames, registers: [this.registry],
      collect() {
        this.reset();
        const v = read(self.snap);
        if (typeof v === 'number') this.set(v);
        else for (const [l, n] of v ?? []) this.set(l, n);
      },
    });
  }
}

/** the lost counters live in a BPF map: a read failure must not fail the scrape */
function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    log.warn({ err: String(e) }, 'metrics: lost-event counters unreadable');
    return undefined;
  }
}

/**
 * "127.0.0.1:9464", "[::1]:9464", "0.0.0.0:9464", ":9464" or "9464": a bare port means loopback. The
 * endpoint has no authentication; a non-loopback address only when given (serveMetrics says `exposed`)
 */
export function parseListen(addr: string): { host: string; port: number } {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[^:[\]]*):)?([0-9]{1,5})$/.exec(addr.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new Error(`--metrics: '${addr}' is not HOST:PORT or PORT (e.g. 9464: 127.0.0.1:9464)`);
  const host = (m[1] ?? '').replace(/^\[|\]$/g, '') || '127.0.0.1';
  return { host, port };
}

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms: reachable from this host only */
export function isLoopback(address: string): boolean {
  const v4 = address.replace(/^::ffff:/i, '');
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4) || /^(0{0,4}:){2,7}0{0,3}1$/.test(address) || address === '::1';
}

export interface MetricsServer {
  /** http://host:port/metrics (the real port when 0 was asked) */
  url: string;
  /** bound to an address other hosts can reach (given explicitly): anyone there can read it */
  exposed: boolean;
  close(): Promise<void>;
}

/** serves GET /metrics on addr until close() */
export async function serveMetrics(m: KrsiMetrics, addr: string): Promise<MetricsServer> {
  const { host, port } = parseListen(addr);
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('krsi: metrics are at /metrics\n');
      return;
    }
    m.text().then(
      (body) => res.writeHead(200, { 'content-type': m.registry.contentType }).end(body),
      (e) => {
        log.error({ err: String(e) }, 'metrics scrape failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(e)}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // every local user can reach it: a bounded number of short-lived connections, so idle sockets cannot
    // eat krsi's fds (krsi needs them for its pins and control socket)
    server.maxConnections = 32;
    server.headersTimeout = 5_000;
    server.requestTimeout = 10_000;
    server.keepAliveTimeout = 2_000;
    server.setTimeout(5_000); // a socket idle that long is closed, request or not
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.unref(); // never keeps krsi alive on its own
  const a = server.address();
  const bound = a && typeof a === 'object' ? a : { address: host, port };
  const url = `http://${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}/metrics`;
  log.info({ url }, 'metrics served');
  return {
    url,
    exposed: !isLoopback(bound.address),
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
