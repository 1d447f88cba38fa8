// Checks an lmdb data file with plain reads BEFORE lmdb maps it (event logs and the verdict store).
// lmdb trusts its file: an empty, cut, zeroed or damaged data file makes mdb_env_open or a later read
// touch memory past the end of the file (SIGBUS) or follow a bad pointer (SIGSEGV), which kills the
// process with no message. So this reads what lmdb would follow and throws a located LmdbFileError:
// the meta pages (magic, version, page size, last page; the file must hold every page up to it), then
// every branch and leaf page of the free, main and named databases (page number, flags, node offsets
// and sizes inside the page, child and overflow pages inside the file, no page reached twice).
// What it cannot close: a file changed by another process after the check, while it is mapped.
// Layout: lmdb-js's LMDB (node_modules/lmdb/dependencies/lmdb/libraries/liblmdb/mdb.c), data
// version 2, 64-bit page numbers.
import { closeSync, fstatSync, openSync, readSync, constants } from 'node:fs';

export class LmdbFileError extends Error {}

const PAGEHDRSZ = 24;
const MAGIC = 0xbeefc0de;
const DATA_VERSION = 2;
const P_BRANCH = 0x01;
const P_LEAF = 0x02;
const P_OVERFLOW = 0x04;
const P_META = 0x08;
const F_BIGDATA = 0x01;
const F_SUBDATA = 0x02;
const F_DUPDATA = 0x04;
/** MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP | MDB_REVERSEDUP: sub-pages this check does not walk */
const DUP_FLAGS = 0x04 | 0x10 | 0x20 | 0x40;
const NODESIZE = 8;
/** MDB_db: md_pad u32, md_flags u16, md_depth u16, branch, leaf, overflow, entries, root (u64 each) */
const DB_SIZE = 48;
/** meta offsets in its page: magic, version, mapsize, dbs[2], last_pg, txnid */
const M_MAGIC = PAGEHDRSZ;
const M_VERSION = PAGEHDRSZ + 4;
const M_DBS = PAGEHDRSZ + 24;
const M_LAST_PG = M_DBS + 2 * DB_SIZE;
const M_TXNID = M_LAST_PG + 8;
const MAX_DEPTH = 32;
/** the free-page database: its values are page lists (u64 count, then that many u64), which a writer
 *  reads as far as the count says */
const FREE_DB = 'the free database';

interface Meta {
  at: number;
  psize: number;
  lastPg: number;
  txnid: number;
  free: DbRec;
  main: DbRec;
}

interface DbRec {
  flags: number;
  depth: number;
  /** -1: empty database (P_INVALID) */
  root: number;
}

/** a u64 that must fit a double exactly (page numbers, txnids); -1 for all ones (P_INVALID) */
function u64(b: Buffer, at: number): number {
  const v = b.readBigUInt64LE(at);
  if (v === 0xffffffffffffffffn) return -1;
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

function dbRec(b: Buffer, at: number): DbRec {
  return { flags: b.readUInt16LE(at + 4), depth: b.readUInt16LE(at + 6), root: u64(b, at + 40) };
}

/** Throws LmdbFileError (naming the file, the page and what is wrong) unless `file` is an lmdb data
 *  file that lmdb can map and read without leaving it. */
export function checkLmdbFile(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    throw new LmdbFileError(`${file}: cannot open: ${(e as Error).message}`);
  }
  try {
    new Checker(file, fd).run();
  } finally {
    closeSync(fd);
  }
}

class Checker {
  private size = 0;
  private psize = 0;
  private lastPg = 0;
  private seen = new Set<number>();

  constructor(
    private readonly file: string,
    private readonly fd: number,
  ) {}

  private fail(what: string): never {
    throw new LmdbFileError(`${this.file}: damaged lmdb file: ${what}`);
  }

  run(): void {
    const st = fstatSync(this.fd);
    if (!st.isFile()) this.fail('not a regular file');
    this.size = st.size;
    if (this.size === 0) this.fail('empty file (no meta pages)');
    const head = Buffer.alloc(PAGEHDRSZ + M_TXNID + 8);
    if (readSync(this.fd, head, 0, head.length, 0) < head.length) this.fail(`truncated to ${this.size} bytes (the first meta page is cut)`);
    const psize = head.readUInt32LE(M_DBS);
    if (psize < 512 || psize > 65536 || (psize & (psize - 1)) !== 0) this.fail(`meta page 0: page size ${psize} is not a power of two in 512..65536`);
    this.psize = psize;
    if (this.size < 2 * psize) this.fail(`file of ${this.size} bytes is shorter than its two meta pages (${2 * psize} bytes)`);
    const m0 = this.meta(0, 'meta page 0', true)!;
    const m1 = this.meta(psize, 'meta page 1', true)!;
    // lmdb-js writers (overlapping sync) also read a meta at half a page; zeros there are never picked
    const mid = this.meta(psize / 2, `meta at byte ${psize / 2}`, false);
    // what a reader picks (the newer of 0 and 1), and what a writer picks (the newest of the three)
    const reader = m0.txnid >= m1.txnid ? m0 : m1;
    const writer = mid && mid.txnid > reader.txnid ? mid : reader;
    for (const m of new Set([reader, writer])) this.walkMeta(m);
  }

  /** the meta at byte `at`; `required`: must be a meta page (else undefined when its txnid is 0) */
  private meta(at: number, name: string, required: boolean): Meta | undefined {
    const b = Buffer.alloc(M_TXNID + 8);
    readSync(this.fd, b, 0, b.length, at);
    const magic = b.readUInt32LE(M_MAGIC);
    const txnid = u64(b, M_TXNID);
    // the half-page meta has no page header, magic or version (lmdb checks none there): a writer
    // picks it by txnid alone
    if (!required && txnid === 0) return undefined;
    if (required) {
      if ((b.readUInt16LE(18) & P_META) === 0) this.fail(`${name}: not a meta page (flags 0x${b.readUInt16LE(18).toString(16)})`);
      if (magic !== MAGIC) this.fail(`${name}: bad magic 0x${magic.toString(16)}`);
      const version = b.readUInt32LE(M_VERSION) & 0xffff;
      if (version !== DATA_VERSION) this.fail(`${name}: data version ${version}, expected ${DATA_VERSION}`);
    }
    if (b.readUInt32LE(M_DBS) !== this.psize) this.fail(`${name}: page size ${b.readUInt32LE(M_DBS)} differs from meta page 0's ${this.psize}`);
    const lastPg = u64(b, M_LAST_PG);
    if (lastPg < 1 || txnid < 0) this.fail(`${name}: last page ${lastPg}, txnid ${txnid}`);
    return { at, psize: this.psize, lastPg, txnid, free: dbRec(b, M_DBS), main: dbRec(b, M_DBS + DB_SIZE) };
  }

  private walkMeta(m: Meta): void {
    const need = (m.lastPg + 1) * this.psize;
    if (this.size < need) this.fail(`truncated: ${this.size} bytes, but the meta at byte ${m.at} (txn ${m.txnid}) uses pages up to ${m.lastPg} (${need} bytes)`);
    this.lastPg = m.lastPg;
    this.seen = new Set();
    this.tree(m.free, FREE_DB, false);
    this.tree(m.main, 'the main database', true);
  }

  /** one database's tree; `named`: its leaves may hold named databases (the main one) */
  private tree(db: DbRec, name: string, named: boolean): void {
    if (db.root === -1) return;
    if (db.flags & DUP_FLAGS) this.fail(`${name}: unsupported flags 0x${db.flags.toString(16)}`);
    if (db.depth < 1 || db.depth > MAX_DEPTH) this.fail(`${name}: bad depth ${db.depth}`);
    this.walk(db.root, 1, db.depth, name, named);
  }

  /** reads page `pgno` into this.page (after checking it is inside the file and not seen before) */
  private load(pgno: number, name: string): Buffer {
    if (pgno < 2 || pgno > this.lastPg) this.fail(`${name}: page ${pgno} is outside pages 2..${this.lastPg}`);
    if (this.seen.has(pgno)) this.fail(`${name}: page ${pgno} is reached twice`);
    this.seen.add(pgno);
    const p = Buffer.alloc(this.psize);
    if (readSync(this.fd, p, 0, this.psize, pgno * this.psize) < this.psize) this.fail(`${name}: page ${pgno} is cut`);
    const own = u64(p, 0);
    if (own !== pgno) this.fail(`${name}: page ${pgno} says it is page ${own} (pages moved or overwritten)`);
    return p;
  }

  private walk(pgno: number, level: number, depth: number, name: string, named: boolean): void {
    const p = this.load(pgno, name);
    const flags = p.readUInt16LE(18);
    const leaf = level === depth;
    if (flags & ~(P_BRANCH | P_LEAF) || (flags & (P_BRANCH | P_LEAF)) !== (leaf ? P_LEAF : P_BRANCH))
      this.fail(`${name}: page ${pgno} has flags 0x${flags.toString(16)}, expected a ${leaf ? 'leaf' : 'branch'} page at level ${level} of ${depth}`);
    const lower = p.readUInt16LE(20);
    const upper = p.readUInt16LE(22);
    const room = this.psize - PAGEHDRSZ;
    if (lower % 2 || lower > upper || upper > room) this.fail(`${name}: page ${pgno}: bad free-space bounds ${lower}..${upper}`);
    const n = lower >> 1;
    if (n === 0 && !leaf) this.fail(`${name}: page ${pgno}: an empty branch page`);
    for (let i = 0; i < n; i++) {
      const where = `${name}: page ${pgno} node ${i}`;
      const off = p.readUInt16LE(PAGEHDRSZ + 2 * i);
      if (off < upper || off + NODESIZE > room) this.fail(`${where}: offset ${off} outside ${upper}..${room}`);
      const at = PAGEHDRSZ + off;
      const lo = p.readUInt16LE(at);
      const hi = p.readUInt16LE(at + 2);
      const nflags = p.readUInt16LE(at + 4);
      const ksize = p.readUInt16LE(at + 6);
      const data = at + NODESIZE + ksize;
      if (data > this.psize) this.fail(`${where}: key of ${ksize} bytes runs past the page`);
      if (!leaf) {
        this.walk(lo + hi * 0x10000 + nflags * 0x100000000, level + 1, depth, name, named);
        continue;
      }
      const dsize = lo + hi * 0x10000;
      if (nflags & ~(F_BIGDATA | F_SUBDATA) || nflags & F_DUPDATA) this.fail(`${where}: unsupported node flags 0x${nflags.toString(16)}`);
      let count: number | undefined;
      if (nflags & F_BIGDATA) {
        if (data + 24 > this.psize) this.fail(`${where}: overflow reference runs past the page`);
        count = this.overflow(u64(p, data), u64(p, data + 16), dsize, where);
      } else {
        if (data + dsize > this.psize) this.fail(`${where}: ${dsize} bytes of data run past the page`);
        if (dsize >= 8) count = u64(p, data);
      }
      if (name === FREE_DB && (dsize < 8 || count === undefined || count < 0 || count > (dsize - 8) / 8)) this.fail(`${where}: a free-page list of ${count} pages in ${dsize} bytes`);
      if (nflags & F_SUBDATA) {
        if (!named || nflags & F_BIGDATA || dsize !== DB_SIZE) this.fail(`${where}: a bad named-database record`);
        const key = p.toString('latin1', at + NODESIZE, data);
        this.tree(dbRec(p, data), `database ${JSON.stringify(key)}`, false);
      }
    }
  }

  /** an F_BIGDATA value: `pages` pages from `pgno`, holding `dsize` bytes after the page header;
   *  returns its first 8 bytes as a u64 (the count of a free-page list) */
  private overflow(pgno: number, pages: number, dsize: number, where: string): number {
    if (pages < 1 || pgno < 2 || pgno + pages - 1 > this.lastPg) this.fail(`${where}: overflow pages ${pgno}+${pages} outside pages 2..${this.lastPg}`);
    if (PAGEHDRSZ + dsize > pages * this.psize) this.fail(`${where}: ${dsize} bytes do not fit in ${pages} overflow pages`);
    const h = Buffer.alloc(PAGEHDRSZ + 8);
    readSync(this.fd, h, 0, PAGEHDRSZ + 8, pgno * this.psize);
    const own = u64(h, 0);
    if (own !== pgno) this.fail(`${where}: overflow page ${pgno} says it is page ${own} (pages moved or overwritten)`);
    if ((h.readUInt16LE(18) & P_OVERFLOW) === 0) this.fail(`${where}: page ${pgno} is not an overflow page`);
    if (this.seen.has(pgno)) this.fail(`${where}: page ${pgno} is reached twice`);
    this.seen.add(pgno);
    return u64(h, PAGEHDRSZ);
  }
}
