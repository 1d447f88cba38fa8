#!/usr/bin/env -S node --inspect-publish-uid=stderr
// krsi's launcher: runs the JavaScript that `npm run build` compiled from the TypeScript sources into dist/.
// Nothing at run time compiles TypeScript, reads a tsconfig or writes a cache: a root process must not run
// code that others can plant (tsx's /tmp/tsx-0 cache, a tsconfig.json above the working directory).

// first, before anything can delay it: Node opens its inspector (127.0.0.1:9229, code execution inside krsi,
// which is exempt from its own enforcement) on SIGUSR1; a listener of our own replaces that signal handler.
// Node 20 has no flag to turn that off; the one above (when run through the shebang) keeps an inspector that
// a SIGUSR1 opens during Node's start-up from publishing its session URL over HTTP (/json/list), and it is
// closed just below.
process.on('SIGUSR1', () => {});

const { existsSync } = await import('node:fs');

// a SIGUSR1 that came during Node's start-up, before the listener, may have opened it: close it unless asked for
const asked = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) => /^--inspect(-brk|-wait)?(=|$)/.test(a));
const inspector = await import('node:inspector').catch(() => undefined); // a node built without it
if (inspector?.url() && !asked) inspector.close();

// in a checkout (the sources are here), dist/ must have been built from them: say so instead of running old code
const root = new URL('..', import.meta.url);
if (existsSync(new URL('cli/main.ts', root))) {
  const { staleDist } = await import('./stale.mjs');
  const why = staleDist(root);
  if (why) {
    process.stderr.write(`krsi: ${why}: run npm run build\n`);
    process.exit(3);
  }
}

await import('../dist/cli/main.js');
