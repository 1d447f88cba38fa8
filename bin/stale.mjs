// Is dist/ older than the sources it was built from? For a checkout only (an installed package has no
// sources): bin/krsi.js refuses to run a stale dist/, test/helpers/krsi.ts rebuilds it.
// bin/build.mjs writes dist/.built, dated when the build started.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** the directories tsconfig.build.json compiles (the same list) */
export const SOURCE_DIRS = ['cli', 'engine', 'signals', 'enforcers', 'bpf', 'lib'];

function mtime(p) {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
}

/** why dist/ under `root` (a path or file: URL) must be rebuilt, or undefined when it is current */
export function staleDist(root) {
  const dir = typeof root === 'string' ? root : fileURLToPath(root);
  const built = mtime(join(dir, 'dist', '.built'));
  if (built < 0) return 'dist/ is not built';
  for (const f of ['tsconfig.json', 'tsconfig.build.json']) if (mtime(join(dir, f)) > built) return `dist/ is older than ${join(dir, f)}`;
  for (const d of SOURCE_DIRS) {
    let entries;
    try {
      entries = readdirSync(join(dir, d), { recursive: true, withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (!e.isFile() || !e.name.endsWith('.ts')) continue;
      const path = join(e.parentPath ?? e.path, e.name);
      if (mtime(path) > built) return `dist/ is older than ${path}`;
    }
  }
  return undefined;
}
