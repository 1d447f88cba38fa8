// Where krsi's own files are (rules/, bpf/, samples, schema): found from the package root, the directory
// holding package.json, so the same code finds them from the sources (lib/package.ts) and from the
// compiled JavaScript (dist/lib/package.js), in a checkout and in an installed package.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// lib/.. in the sources, dist/lib/.. = dist/ when compiled (dist/ has no package.json)
const up = fileURLToPath(new URL('..', import.meta.url));

/** the package root, with a trailing separator */
export const PACKAGE_ROOT = existsSync(join(up, 'package.json')) ? up : `${dirname(up)}/`;

/** a path inside the package: packagePath('rules', 'schema.json') */
export function packagePath(...parts: string[]): string {
  return join(PACKAGE_ROOT, ...parts);
}
