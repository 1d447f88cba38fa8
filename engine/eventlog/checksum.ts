// Block checksums of lmdb event logs (format krsi-eventlog-3): a stored value is a u32le CRC-32 and
// then the block (block.ts). The CRC covers the block's key (its first seq, as a u64le) and then its
// bytes, so a damaged block, and a block moved under another key, both fail the check.
import { crc32 } from 'node:zlib';

const key8 = Buffer.alloc(8);

function crcOf(key: number, block: Uint8Array): number {
  key8.writeBigUInt64LE(BigInt(key));
  return crc32(block, crc32(key8));
}

/** the stored value of `block` under `key` */
export function seal(key: number, block: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + block.length);
  out.writeUInt32LE(crcOf(key, block), 0);
  out.set(block, 4);
  return out;
}

/** the block inside a stored value, or a string saying why the value is damaged */
export function unseal(key: number, value: Uint8Array): Uint8Array | string {
  if (value.length < 5) return `${value.length} bytes, too short for a checksummed block`;
  const block = value.subarray(4);
  const want = (value[0] | (value[1] << 8) | (value[2] << 16) | (value[3] << 24)) >>> 0;
  const got = crcOf(key, block);
  return got === want ? block : `checksum mismatch (stored 0x${want.toString(16)}, computed 0x${got.toString(16)})`;
}
