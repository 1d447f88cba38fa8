// Event-derived strings (paths, argv, env values, comm, module names) are chosen by whoever runs the
// process: printed raw to a terminal, ESC[2J clears it and "\nDENIED ..." forges an output line. Text
// output shows every character that a terminal would act on instead of print as a visible escape:
// C0 controls, DEL, C1 controls, the Unicode line and paragraph separators and the bidi controls
// (which reorder what follows them on the line). JSON output needs none of this: JSON.stringify
// escapes C0, and its readers take strings as data.

/** the characters that do something other than print */
// eslint-disable-next-line no-control-regex
const ACTIVE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\u001b': '\\x1b' };

function escape(c: string): string {
  const code = c.charCodeAt(0);
  return NAMED[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`);
}

/** s with every control, separator and bidi character shown as an escape (`\x1b`, `\n`, `\u{202e}`) */
export function visible(s: string): string {
  ACTIVE.lastIndex = 0;
  return ACTIVE.test(s) ? s.replace(ACTIVE, escape) : s;
}
