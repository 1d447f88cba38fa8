// krsi's ring buffer reader: BPF ring buffer maps drained from the Node event loop by reading the
// mmapped ring in JS (libbpf's ringbuf_process_ring), no FFI call per record.
import koffi from 'koffi';
import { childLogger } from '../lib/logger.ts';
import { BpfError } from './errors.ts';
import { BPF_MAP_TYPE_RINGBUF, type BpfMap } from './map.ts';
import { N, type Ptr } from './native.ts';

const log = childLogger('libbpf');

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const MAP_FAILED = 0xffffffffffffffffn;
const RB_BUSY = 0x80000000;
const RB_DISCARD = 0x40000000;
const RB_HDR = 8;
let PAGE = 0; // the system page size, read on the first add()

interface Ring {
  map: BpfMap;
  source: number;
  consPtr: Ptr;
  dataPtr: Ptr;
  dataLen: number;
  mask: number;
  cons: BigUint64Array;   // [0] = consumer_pos (we write)
  prod: BigUint64Array;   // [0] = producer_pos (kernel writes)
  hdr: Int32Array;        // data area (both copies) as 32-bit words
  buf: Buffer;            // data area as bytes
  poll: { close(): void } | null;
}

export interface RingBufferOptions {
  /** at most this many records per event-loop turn before yielding to timers and I/O (default 65536) */
  budget?: number;
  /** at most about this many milliseconds per event-loop turn (default 2; checked every 256 records) */
  sliceMs?: number;
  /** onRecord is a RecordViewHandler: (ring, offset, length, source), no Buffer made per record */
  view?: boolean;
}

/** a record as its own Buffer (a view into the ring made per record) */
export type RecordHandler = (data: Buffer, source: number) => void;
/**
 * a record in place: its bytes are data[offset, offset + length), data being the ring's whole data area
 * (the same Buffer for every record of a ring; records that wrap are contiguous through the second
 * mapping). Nothing is allocated per record; read what you keep before returning.
 */
export type RecordViewHandler = (data: Buffer, offset: number, length: number, source: number) => void;

/**
 * Drains BPF ring buffer maps from the Node event loop: the map's consumer/producer pages and data area
 * are mmapped and records parsed in JS (no FFI call per record); readiness comes from a libuv poll on
 * the map fd. onRecord gets a view into the ring: copy what you keep, it is reused once onRecord returns.
 * With { view: true } onRecord is a RecordViewHandler and gets the ring, an offset and a length instead
 * of a Buffer per record (the hot path of signals/live.ts).
 */
export class RingBuffer {
  private readonly rings: Ring[] = [];
  private running = false;
  private readonly budget: number;
  private readonly sliceMs: number;
  /** records delivered */
  count = 0;
  /** records whose onRecord threw while draining from the event loop (logged) */
  errors = 0;
  private stopped = false;
  private depth = 0;

  private readonly onView: RecordViewHandler;

  constructor(onRecord: RecordViewHandler, o: RingBufferOptions & { view: true });
  constructor(onRecord: RecordHandler, o?: RingBufferOptions & { view?: false });
  constructor(onRecord: RecordHandler | RecordViewHandler, o: RingBufferOptions = {}) {
    this.budget = o.budget ?? 65536;
    this.sliceMs = o.sliceMs ?? 2;
    if (o.view) this.onView = onRecord as RecordViewHandler;
    else {
      const h = onRecord as RecordHandler;
      this.onView = (data, offset, length, source) => h(data.subarray(offset, offset + length), source);
    }
  }

  /** add a ring buffer map; source is its index in add order */
  add(map: BpfMap): number {
    if (this.stopped) throw new Error('RingBuffer.add: stopped');
    if (map.type !== BPF_MAP_TYPE_RINGBUF) throw new Error(`RingBuffer.add: map ${map.name} is not a ring buffer (type ${map.type})`);
    const n = N();
    const size = map.maxEntries;
    PAGE ||= n.getpagesize() as number;
    const consPtr = n.mmap(null, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, map.fd, 0) as Ptr;
    if (consPtr === MAP_FAILED || !consPtr) throw new BpfError(`mmap consumer page of ${map.name}`, koffi.errno());
    const dataLen = PAGE + 2 * size;
    const dataPtr = n.mmap(null, dataLen, PROT_READ, MAP_SHARED, map.fd, PAGE) as Ptr;
    if (dataPtr === MAP_FAILED || !dataPtr) {
      n.munmap(consPtr, PAGE);
      throw new BpfError(`mmap data area of ${map.name}`, koffi.errno());
    }
    const consAb = koffi.view(consPtr, PAGE);
    const dataAb = koffi.view(dataPtr, dataLen);
    const ring: Ring = {
      map, source: this.rings.length, consPtr, dataPtr, dataLen, mask: size - 1,
      cons: new BigUint64Array(consAb, 0, 1), prod: new BigUint64Array(dataAb, 0, 1),
      hdr: new Int32Array(dataAb, PAGE), buf: Buffer.from(dataAb, PAGE), poll: null,
    };
    this.rings.push(ring);
    if (this.running) this.watch(ring);
    return ring.source;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const r of this.rings) this.watch(r);
    // records already waiting
    setImmediate(() => this.turn());
  }

  private watch(r: Ring): void {
    r.poll = koffi.node.poll(r.map.fd, { readable: true }, () => this.guarded(r));
  }

  // one event-loop turn: every ring, within the budget and time slice
  private turn(): void {
    for (const r of this.rings) this.guarded(r);
  }

  // a throwing onRecord must not take the process down from inside a poll callback: log it, carry on
  private guarded(r: Ring): void {
    if (!this.running) return;
    try {
      this.drain(r, this.budget, this.sliceMs);
    } catch (e) {
      this.errors++;
      log.error({ err: e, map: r.map.name }, 'ring buffer record handler threw');
    }
  }

  /** deliver every record waiting now in every ring (no budget, no time slice); returns how many */
  drainAll(): number {
    let total = 0;
    for (const r of this.rings) total += this.drain(r, Infinity, Infinity);
    return total;
  }

  // the libbpf consumer loop (ringbuf_process_ring) in JS
  private drain(r: Ring, budget: number, sliceMs: number): number {
    if (this.stopped) return 0;
    let cons = Number(Atomics.load(r.cons, 0));
    let done = 0;
    let sinceStore = 0;
    const deadline = performance.now() + sliceMs;
    const { hdr, buf, mask } = r;
    this.depth++;
    try {
      outer: for (;;) {
        const prod = Number(Atomics.load(r.prod, 0));
        if (cons >= prod) break;
        while (cons < prod) {
          const off = cons & mask;
          const len = Atomics.load(hdr, off >> 2) >>> 0;
          // reserved, not yet committed: later records wait for it
          if (len & RB_BUSY) break outer;
          const size = len & ~(RB_BUSY | RB_DISCARD);
          cons += (size + RB_HDR + 7) & ~7;
          if (!(len & RB_DISCARD)) {
            this.onView(buf, off + RB_HDR, size, r.source);
            done++;
            // stop() was called from onRecord
            if (this.stopped) break outer;
          }
          if (++sinceStore >= 256) {
            // hand the space back to the kernel, and yield when the slice is used up
            Atomics.store(r.cons, 0, BigInt(cons));
            sinceStore = 0;
            if (performance.now() > deadline) break outer;
          }
          if (done >= budget) break outer;
        }
      }
    } finally {
      Atomics.store(r.cons, 0, BigInt(cons));
      this.count += done;
      if (--this.depth === 0 && this.stopped) this.unmap();
    }
    return done;
  }

  private unmap(): void {
    // a ring exists only once add() has bound the library
    for (const r of this.rings) {
      N().munmap(r.dataPtr, r.dataLen);
      N().munmap(r.consPtr, PAGE);
    }
    this.rings.length = 0;
  }

  /** stop polling and unmap the rings (after the current drain, when called from onRecord); the process can exit afterwards */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.running = false;
    this.stopped = true;
    for (const r of this.rings) {
      r.poll?.close();
      r.poll = null;
    }
    if (this.depth === 0) this.unmap();
    await new Promise<void>((res) => setImmediate(res));
  }
}
