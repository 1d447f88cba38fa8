// A faster reader for the values of format 1 lmdb event logs (krsi-eventlog-1, one value per event;
// format 2 stores blocks, block.ts), used only when replaying (readLmdb).
// The log stores events as msgpackr records (shared structures, lmdb's default encoding). msgpackr
// decodes each short string of a small value with String.fromCharCode: for events, whose strings
// repeat endlessly (type, comm, exe.path, module names), that was a fifth of a replay's CPU time and
// most of its garbage. This decoder reads the subset of MessagePack that krsi events use and returns
// repeated ASCII strings from a small cache (no allocation); anything else (an unknown structure,
// extension types, 64-bit integers, non-ASCII text, ...) goes to msgpackr itself, so the result is
// always what msgpackr gives. test/eventlog/msgpack-values.test.ts compares the two.
import { Packr } from 'msgpackr';

/** thrown inside the fast path: decode this value with msgpackr */
const FALLBACK = Symbol('fallback');

/** direct-mapped cache of ASCII strings up to MAX_CACHED bytes */
const CACHE_SIZE = 4096;
const MAX_CACHED = 48;

type Reader = () => unknown;

export class EventDecoder extends Packr {
  private src: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(new ArrayBuffer(8));
  private pos = 0;
  private end = 0;
  private readers: (Reader | undefined)[] = [];
  private readerOf: unknown[] = [];
  private cache: (string | undefined)[] = new Array(CACHE_SIZE);
  private text = new TextDecoder();
  /** values decoded by msgpackr instead (for tests and curiosity) */
  fallbacks = 0;

  // lmdb calls decode(bytes, size); bytes may be a shared buffer longer than the value
  override decode(src: Uint8Array, end?: number | object): unknown {
    if (typeof end === 'number') {
      try {
        this.src = src;
        this.pos = 0;
        this.end = end;
        if (this.view.buffer !== src.buffer || this.view.byteOffset !== src.byteOffset) this.view = new DataView(src.buffer, src.byteOffset, src.byteLength);
        const v = this.read();
        if (this.pos === end) return v;
      } catch (e) {
        if (e !== FALLBACK) throw e;
      }
    }
    this.fallbacks++;
    return super.decode(src as Buffer, end as number);
  }

  private read(): unknown {
    const src = this.src;
    if (this.pos >= this.end) throw FALLBACK;
    const t = src[this.pos++];
    if (t < 0x40) return t;
    if (t < 0x80) return this.record(t & 0x3f);
    if (t < 0x90) return this.map(t - 0x80);
    if (t < 0xa0) return this.array(t - 0x90);
    if (t < 0xc0) return this.str(t - 0xa0);
    if (t >= 0xe0) return t - 0x100;
    const v = this.view;
    const p = this.pos;
    switch (t) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xcb:
        this.pos = p + 8;
        return v.getFloat64(p);
      case 0xcc:
        this.pos = p + 1;
        return src[p];
      case 0xcd:
        this.pos = p + 2;
        return v.getUint16(p);
      case 0xce:
        this.pos = p + 4;
        return v.getUint32(p);
      case 0xd0:
        this.pos = p + 1;
        return v.getInt8(p);
      case 0xd1:
        this.pos = p + 2;
        return v.getInt16(p);
      case 0xd2:
        this.pos = p + 4;
        return v.getInt32(p);
      case 0xd9:
        this.pos = p + 1;
        return this.str(src[p]);
      case 0xda:
        this.pos = p + 2;
        return this.str(v.getUint16(p));
      case 0xdc:
        this.pos = p + 2;
        return this.array(v.getUint16(p));
      case 0xde:
        this.pos = p + 2;
        return this.map(v.getUint16(p));
    }
    // 0xca float32 (msgpackr rounds it), 64-bit integers, ext types (undefined, dates, inline
    // record definitions), bin, 32-bit lengths
    throw FALLBACK;
  }

  private str(len: number): string {
    const src = this.src;
    const start = this.pos;
    const end = start + len;
    if (end > this.end) throw FALLBACK;
    this.pos = end;
    if (len === 0) return '';
    if (len <= MAX_CACHED) {
      // a few sampled bytes pick the slot (the tail tells paths and names apart); a hit is checked
      // byte by byte, which also proves the bytes ASCII (only ASCII strings are cached)
      const h = len * 0x9e3779b1 + src[start] * 0x45d9f3b + src[end - 1] * 0x2c1b3c6d + src[end - 2] * 0x297a2d39 + src[end - 3] * 0x1b873593 + src[start + (len >> 1)] * 0xcc9e2d51;
      const slot = (h ^ (h >>> 13)) & (CACHE_SIZE - 1);
      const c = this.cache[slot];
      if (c !== undefined && c.length === len) {
        let i = 0;
        while (i < len && c.charCodeAt(i) === src[start + i]) i++;
        if (i === len) return c;
      }
      for (let i = start; i < end; i++) if (src[i] >= 0x80) throw FALLBACK; // UTF-8: msgpackr's own decoding
      const s = this.text.decode(src.subarray(start, end));
      this.cache[slot] = s;
      return s;
    }
    for (let i = start; i < end; i++) if (src[i] >= 0x80) throw FALLBACK;
    return this.text.decode(src.subarray(start, end));
  }

  private array(n: number): unknown[] {
    const a = new Array(n);
    for (let i = 0; i < n; i++) a[i] = this.read();
    return a;
  }

  private map(n: number): Record<string, unknown> {
    if (!(this as unknown as { mapsAsObjects?: boolean }).mapsAsObjects) throw FALLBACK;
    const o: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const k = this.read();
      if (typeof k !== 'string' || k === '__proto__') throw FALLBACK;
      o[k] = this.read();
    }
    return o;
  }

  /** a record of shared structure `id`: an object literal built by a reader compiled per structure */
  private record(id: number): unknown {
    const structures = (this as unknown as { structures?: (string[] & { highByte?: number })[] }).structures;
    const keys = structures?.[id];
    if (keys === undefined || keys.highByte !== undefined) throw FALLBACK;
    let r = this.readers[id];
    if (r === undefined || this.readerOf[id] !== keys) {
      if (!keys.every((k) => /^[a-zA-Z_$][a-zA-Z\d_$]*$/.test(k) && k !== '__proto__')) throw FALLBACK;
      r = new Function('r', `return function () { return { ${keys.map((k) => `${k}: r()`).join(', ')} }; }`)(() => this.read()) as Reader;
      this.readers[id] = r;
      this.readerOf[id] = keys;
    }
    return r();
  }
}
