// The block codec of lmdb event logs (formats krsi-eventlog-2 and -3): up to BLOCK events in one value.
//
// A block carries its own string table and object shapes, so it decodes on its own (no shared state
// in the database, nothing to keep in step between writer and reader), and a string that repeats
// within it — the event type, comm, exe.path, field names — is decoded once per block instead of
// once per event. The values are JSON values, and a block round-trips exactly what JSON.stringify
// would write (undefined members dropped, non-finite numbers as null): decode(encode(evs)) deep-equals
// JSON.parse(JSON.stringify(evs)). test/eventlog/block.test.ts checks that on generated and odd values.
//
//   block   := u8 VERSION, varint count, varint nstrings, string*, varint nshapes, shape*, value*count
//   string  := varint bytes, UTF-8 bytes
//   shape   := varint nkeys, varint string-index * nkeys        (an object's keys, in order)
//   value   := 0x00..0x7f                       the integer itself
//            | NULL | FALSE | TRUE
//            | U32 u32le | I32 i32le | F64 f64le  numbers
//            | STR varint string-index
//            | ARR varint n, value*n
//            | OBJ varint shape-index, value*nkeys
const VERSION = 1;
/** objects and arrays nested deeper than this are refused (encode) or a damaged block (decode) */
const MAX_DEPTH = 64;
const NULL = 0xc0;
const FALSE = 0xc2;
const TRUE = 0xc3;
const U32 = 0xce;
const I32 = 0xd2;
const F64 = 0xcb;
const STR = 0xd9;
const ARR = 0xdc;
const OBJ = 0xde;

/** a block that is not what encode wrote (a damaged or foreign value) */
export class BlockError extends Error {}

/** Encodes events into one block, appended one at a time; bytes() gives the block so far. */
export class BlockEncoder {
  private strings = new Map<string, number>();
  private stringBytes: Buffer[] = [];
  private shapeRoot: ShapeNode = { id: -1, next: undefined };
  private shapeCount = 0;
  private shapeBytes: number[] = [];
  private body = Buffer.allocUnsafe(16384);
  private len = 0;
  /** values encoded so far */
  count = 0;

  /** appends one value (an event); a value that cannot be encoded (a BigInt, a cycle, nesting deeper
   *  than MAX_DEPTH) throws a TypeError and leaves the block as it was */
  add(v: unknown): void {
    const len = this.len;
    try {
      this.value(v, false, 0);
    } catch (e) {
      this.len = len; // strings and shapes it added stay in the tables, unused: harmless
      throw e;
    }
    this.count++;
  }

  /** the block holding every value added so far */
  bytes(): Buffer {
    const head: number[] = [VERSION];
    varint(head, this.count);
    varint(head, this.stringBytes.length);
    const mid: number[] = [];
    varint(mid, this.shapeCount);
    // no spread: an object with 200k keys makes a shape of 200k+ numbers (more arguments than the stack holds)
    return Buffer.concat([Buffer.from(head), ...this.stringBytes, Buffer.from(mid), Buffer.from(this.shapeBytes), this.body.subarray(0, this.len)]);
  }

  private room(n: number): void {
    if (this.len + n <= this.body.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.body.length * 2, this.len + n));
    this.body.copy(bigger, 0, 0, this.len);
    this.body = bigger;
  }

  private byte(b: number): void {
    this.room(1);
    this.body[this.len++] = b;
  }

  private uvar(n: number): void {
    this.room(5);
    while (n > 0x7f) {
      this.body[this.len++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.body[this.len++] = n;
  }

  private string(s: string): number {
    let i = this.strings.get(s);
    if (i === undefined) {
      i = this.stringBytes.length;
      this.strings.set(s, i);
      const utf8 = Buffer.from(s, 'utf8');
      const head: number[] = [];
      varint(head, utf8.length);
      this.stringBytes.push(Buffer.concat([Buffer.from(head), utf8]));
    }
    return i;
  }

  private value(v: unknown, inArray: boolean, depth: number): void {
    switch (typeof v) {
      case 'number':
        if (v === 0) return this.byte(0); // -0 too, as JSON writes it
        if (Number.isInteger(v) && v > 0 && v <= 0x7f) return this.byte(v);
        this.room(9);
        if (Number.isInteger(v) && v > 0 && v <= 0xffffffff) {
          this.body[this.len++] = U32;
          this.body.writeUInt32LE(v, this.len);
          this.len += 4;
        } else if (Number.isInteger(v) && v < 0 && v >= -0x80000000) {
          this.body[this.len++] = I32;
          this.body.writeInt32LE(v, this.len);
          this.len += 4;
        } else if (Number.isFinite(v)) {
          this.body[this.len++] = F64;
          this.body.writeDoubleLE(v, this.len);
          this.len += 8;
        } else this.body[this.len++] = NULL; // as JSON
        return;
      case 'string':
        this.byte(STR);
        this.uvar(this.string(v));
        return;
      case 'boolean':
        this.byte(v ? TRUE : FALSE);
        return;
      case 'object':
        if (v === null) return this.byte(NULL);
        if (depth >= MAX_DEPTH) throw new TypeError(`an event value nested deeper than ${MAX_DEPTH} levels (or a cycle)`);
        if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return this.value((v as { toJSON(): unknown }).toJSON(), inArray, depth + 1);
        if (Array.isArray(v)) {
          this.byte(ARR);
          this.uvar(v.length);
          for (const x of v) this.value(x, true, depth + 1);
          return;
        }
        return this.object(v as Record<string, unknown>, depth + 1);
      default:
        // undefined, functions, symbols: JSON drops them as members (see object) and writes null in arrays
        if (inArray && typeof v !== 'bigint') return this.byte(NULL);
        throw new TypeError(`cannot encode a ${typeof v} as an event value`);
    }
  }

  private object(o: Record<string, unknown>, depth: number): void {
    const keys = Object.keys(o);
    // members with a toJSON are replaced by what it returns, as JSON does (which may drop them)
    let vals: unknown[] | undefined;
    for (let i = 0; i < keys.length; i++) {
      const v = o[keys[i]];
      if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
        vals ??= keys.map((k) => o[k]);
        vals[i] = (v as { toJSON(key: string): unknown }).toJSON(keys[i]);
      }
    }
    // the shape: a walk down a trie of the kept keys (no key string is built per object)
    let node = this.shapeRoot;
    let dropped = false;
    for (let i = 0; i < keys.length; i++) {
      if (dropsMember(vals ? vals[i] : o[keys[i]])) dropped = true;
      else node = child(node, keys[i]);
    }
    let id = node.id;
    if (id < 0) {
      id = node.id = this.shapeCount++;
      const kept = dropped ? keys.filter((k, i) => !dropsMember(vals ? vals[i] : o[k])) : keys;
      varint(this.shapeBytes, kept.length);
      for (const k of kept) varint(this.shapeBytes, this.string(k));
    }
    this.byte(OBJ);
    this.uvar(id);
    for (let i = 0; i < keys.length; i++) {
      const v = vals ? vals[i] : o[keys[i]];
      if (!dropped || !dropsMember(v)) this.value(v, false, depth);
    }
  }
}

/** JSON.stringify leaves these members out of an object */
const dropsMember = (v: unknown) => v === undefined || typeof v === 'function' || typeof v === 'symbol';

interface ShapeNode {
  /** the shape id of the keys leading here, -1 while no object had exactly these */
  id: number;
  next: Map<string, ShapeNode> | undefined;
}

function child(node: ShapeNode, key: string): ShapeNode {
  let next = node.next;
  if (next === undefined) next = node.next = new Map();
  let c = next.get(key);
  if (c === undefined) {
    c = { id: -1, next: undefined };
    next.set(key, c);
  }
  return c;
}

function varint(out: number[], n: number): void {
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
}

/** encodes a list of values as one block */
export function encodeBlock(values: unknown[]): Buffer {
  const e = new BlockEncoder();
  for (const v of values) e.add(v);
  return e.bytes();
}

// ---- decoding: module-level state, so that read() is a plain function V8 inlines into the readers
// compiled per shape; decodeBlock is synchronous and never re-entered

type Reader = () => unknown;
type SeqReader = (seq: number) => unknown;
let src: Uint8Array = new Uint8Array(0);
let view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(8));
let pos = 0;
let end = 0;
let strings: string[] = [];
/** objects and arrays open around the value being read */
let depth = 0;
let readers: Reader[] = [];
/** readers compiled per shape (its keys joined by \0), shared by all blocks */
const compiled = new Map<string, Reader>();
const compiledSeq = new Map<string, Reader>();
const EMPTY = new Uint8Array(0);
const utf8 = new TextDecoder('utf-8', { fatal: true });

function fail(what: string): never {
  throw new BlockError(`damaged event block: ${what} at byte ${pos}`);
}

function uvar(): number {
  if (pos >= end) fail('truncated');
  const b = src[pos++];
  if (b < 0x80) return b;
  return uvarLong(b);
}

function uvarLong(first: number): number {
  let n = first & 0x7f;
  let scale = 0x80;
  for (;;) {
    if (pos >= end) fail('truncated');
    const b = src[pos++];
    n += (b & 0x7f) * scale;
    if (b < 0x80) return n;
    scale *= 0x80;
    if (scale > 2 ** 35) fail('bad length');
  }
}

function read(): unknown {
  if (pos >= end) fail('truncated');
  const t = src[pos++];
  if (t < 0x80) return t;
  const p = pos;
  // the tags as literals: V8 folds them into the switch (the named consts are context loads here)
  switch (t) {
    case 0xd9: {
      // STR
      const s = strings[uvar()];
      if (s === undefined) fail('bad string index');
      return s;
    }
    case 0xde: {
      // OBJ
      const r = readers[uvar()];
      if (r === undefined) fail('bad shape index');
      if (++depth > MAX_DEPTH) fail('nested too deeply');
      const o = r();
      depth--;
      return o;
    }
    case 0xce: // U32
      if ((pos = p + 4) > end) fail('truncated');
      return view.getUint32(p, true);
    case 0xcb: // F64
      if ((pos = p + 8) > end) fail('truncated');
      return view.getFloat64(p, true);
    case 0xd2: // I32
      if ((pos = p + 4) > end) fail('truncated');
      return view.getInt32(p, true);
    case 0xdc: {
      // ARR
      const n = uvar();
      if (n > end - pos) fail('bad array length');
      if (++depth > MAX_DEPTH) fail('nested too deeply');
      // grown as its values decode: memory stays in proportion to the block's bytes
      const a: unknown[] = [];
      for (let i = 0; i < n; i++) a.push(read());
      depth--;
      return a;
    }
    case 0xc0: // NULL
      return null;
    case 0xc2: // FALSE
      return false;
    case 0xc3: // TRUE
      return true;
  }
  return fail(`unknown tag 0x${t.toString(16)}`);
}

/** an object literal per shape: objects of one shape share a hidden class; keys as string literals,
 *  __proto__ computed (a literal __proto__ key would set the prototype). `withSeq`: the reader takes a
 *  seq and puts it in the literal as the last member (set afterwards, it would cost a property store
 *  allocation per event). */
function compile(keys: string[], withSeq: boolean): Reader {
  const members = keys.map((k) => `${k === '__proto__' ? '["__proto__"]' : JSON.stringify(k)}: r()`);
  if (withSeq) members.push('seq: s');
  return new Function('r', `return function (s) { return { ${members.join(', ')} }; }`)(read) as Reader;
}

/** beyond MAX_COMPILED shapes (objects used as maps, with ever new keys), a plain loop: compiling
 *  each would cost more than it saves */
const MAX_COMPILED = 4096;
/** nor objects with more keys than this (an env of 200k variables): a literal that large is slow to
 *  compile and may not fit the parser's stack */
const MAX_COMPILED_KEYS = 256;

function generic(keys: string[], withSeq: boolean): Reader {
  return (s?: unknown) => {
    const o: Record<string, unknown> = {};
    for (const k of keys) {
      const v = read();
      if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
      else o[k] = v;
    }
    if (withSeq) o.seq = s;
    return o;
  };
}

/** the reader of objects with these keys (`withSeq`: a top-level event that gets its seq) */
function readerOf(keys: string[], withSeq: boolean): Reader {
  const cache = withSeq ? compiledSeq : compiled;
  // the cache key must tell every key list apart (joined by a separator, [""] and [] would not be)
  const sig = JSON.stringify(keys);
  let r = cache.get(sig);
  if (r === undefined) {
    if (cache.size >= MAX_COMPILED || keys.length > MAX_COMPILED_KEYS) return generic(keys, withSeq);
    r = compile(keys, withSeq);
    cache.set(sig, r);
  }
  return r;
}

/**
 * The values of a block written by BlockEncoder (throws BlockError on anything else). `firstSeq`: the
 * values are events numbered from firstSeq; an event stored without `seq` gets its number (as its last
 * member, as a reader setting it afterwards would), one stored with a `seq` keeps it.
 */
export function decodeBlock(bytes: Uint8Array, firstSeq?: number): unknown[] {
  src = bytes;
  pos = 0;
  depth = 0;
  end = bytes.length;
  view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    if (src[pos++] !== VERSION) fail(`unknown block version ${src[0]}`);
    const count = uvar();
    const ns = uvar();
    if (ns > end - pos) fail('bad string count');
    strings = new Array(ns);
    for (let i = 0; i < ns; i++) {
      const n = uvar();
      if (pos + n > end) fail('truncated string');
      strings[i] = ascii(pos, n) ?? decodeUtf8(pos, n);
      pos += n;
    }
    const nk = uvar();
    if (nk > end - pos) fail('bad shape count');
    readers = new Array(nk);
    const seqReaders: (SeqReader | undefined)[] = firstSeq === undefined ? [] : new Array(nk);
    for (let i = 0; i < nk; i++) {
      const n = uvar();
      if (n > end - pos) fail('bad shape');
      const keys = new Array<string>(n);
      for (let j = 0; j < n; j++) {
        const k = strings[uvar()];
        if (k === undefined) fail('bad key index');
        keys[j] = k;
      }
      readers[i] = readerOf(keys, false);
      if (firstSeq !== undefined && !keys.includes('seq')) seqReaders[i] = readerOf(keys, true) as SeqReader;
    }
    if (count > end - pos) fail('bad count');
    const out = new Array(count);
    if (firstSeq === undefined) for (let i = 0; i < count; i++) out[i] = read();
    else
      for (let i = 0; i < count; i++) {
        // an object (an event) whose shape has no seq: read with its seq
        const at = pos;
        if (src[pos] === 0xde) {
          pos++;
          const r = seqReaders[uvar()];
          if (r !== undefined) {
            depth = 1;
            out[i] = r(firstSeq + i);
            depth = 0;
            continue;
          }
        }
        pos = at;
        out[i] = read();
      }
    if (pos !== end) fail('trailing bytes');
    return out;
  } finally {
    src = EMPTY;
    strings = [];
    readers = [];
  }
}

/** short ASCII strings without a TextDecoder call (most of a block's strings) */
function ascii(at: number, n: number): string | undefined {
  if (n > 24) return undefined;
  for (let i = at; i < at + n; i++) if (src[i] >= 0x80) return undefined;
  return String.fromCharCode.apply(null, src.subarray(at, at + n) as unknown as number[]);
}

function decodeUtf8(at: number, n: number): string {
  try {
    return utf8.decode(src.subarray(at, at + n));
  } catch {
    return fail('bad UTF-8');
  }
}
