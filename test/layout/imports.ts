// The import graph of krsi's run-time sources, read from their import statements (static, dynamic and
// `export ... from`), for the layering test and for anyone asking who imports what.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** the layers, lowest first: a module may import its own layer and the ones below it */
export const LAYERS = ['lib', 'bpf', 'signals', 'engine', 'enforcers', 'cli'] as const;
export type Layer = (typeof LAYERS)[number];

export function layerOf(file: string): Layer | undefined {
  const top = file.split('/')[0];
  return (LAYERS as readonly string[]).includes(top) ? (top as Layer) : undefined;
}

/** relative specifiers of one source (TypeScript's own pre-parser: static, dynamic and re-exports),
 *  resolved to repository paths */
export function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(join(ROOT, file), 'utf8'), true, true);
  return info.importedFiles.map((i) => i.fileName).filter((s) => s.startsWith('.')).map((s) => normalize(join(dirname(file), s)));
}

/** every .ts file under the given top-level directories, as repository paths */
export function sources(dirs: readonly string[]): string[] {
  return dirs.flatMap((d) =>
    readdirSync(join(ROOT, d), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.split('/').includes('build'))
      .map((f) => join(d, f)),
  );
}

export function rel(p: string): string {
  return relative(ROOT, join(ROOT, p));
}
