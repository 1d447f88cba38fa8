// Every issue code the rule loader reports, its severity and its message text, in one place.
// Documented for users in rules/README.md ("Error codes").

type Args = Record<string, string | number | undefined>;

interface MessageDef {
  severity: 'error' | 'warning';
  text: (a: Args) => string;
}

/** a value quoted for a message; a long one is cut (a hostile file's names can be megabytes) */
const q = (s: unknown) => {
  const j = JSON.stringify(s) ?? String(s);
  return j.length > MAX_QUOTE ? `${j.slice(0, MAX_QUOTE)}…(${j.length} characters)` : j;
};
const MAX_QUOTE = 120;
const suggest = (a: Args) => (a.suggestion ? ` (did you mean ${q(a.suggestion)}?)` : '');

export const MESSAGES = {
  READ_ERROR: { severity: 'error', text: (a) => `cannot read: ${a.reason}` },
  NO_RULE_FILES: { severity: 'warning', text: (a) => `no *.json rule files in ${a.dir}` },
  PARSE_ERROR: { severity: 'error', text: (a) => `invalid JSON: ${a.reason}` },
  TOO_DEEP: { severity: 'error', text: (a) => `${a.reason}: this file is not checked further until it is within the limit` },
  RESERVED_KEY: {
    severity: 'error',
    text: (a) => `key ${q(a.key)} is not allowed here (it names a JavaScript object's prototype, so it could change what a reader sees)`,
  },
  DUPLICATE_KEY: { severity: 'error', text: (a) => `key ${q(a.key)} appears twice in this object (JSON keeps only the last)` },
  MISSING_FIELD: { severity: 'error', text: (a) => `missing required field ${q(a.field)}` },
  UNKNOWN_FIELD: { severity: 'error', text: (a) => `unknown field ${q(a.field)}${suggest(a)}` },
  WRONG_TYPE: { severity: 'error', text: (a) => `must be ${a.expected}` },
  BAD_VALUE: { severity: 'error', text: (a) => `${q(a.value)} is not one of ${a.allowed}` },
  BAD_FORMAT: { severity: 'error', text: (a) => `${q(a.value)} does not have the expected form: ${a.pattern}` },
  TOO_FEW: { severity: 'error', text: (a) => `needs at least ${a.limit} ${a.what}` },
  TOO_MANY: { severity: 'error', text: (a) => `allows at most ${a.limit} ${a.what}` },
  OUT_OF_RANGE: { severity: 'error', text: (a) => `must be ${a.comparison} ${a.limit}` },
  SCHEMA: { severity: 'error', text: (a) => `${a.reason}` },
  UNKNOWN_OPERATOR: { severity: 'error', text: (a) => `unknown operator ${q(a.name)}${suggest(a)}` },
  UNKNOWN_FACT: { severity: 'error', text: (a) => `unknown fact ${q(a.name)}${suggest(a)}` },
  UNKNOWN_LIST: { severity: 'error', text: (a) => `no list named ${q(a.name)}${suggest(a)}` },
  UNKNOWN_EVENT_TYPE: { severity: 'error', text: (a) => `unknown event type ${q(a.name)}${suggest(a)}` },
  BAD_PATH: { severity: 'error', text: (a) => `bad path ${q(a.path)}: ${a.reason}` },
  BAD_REGEX: { severity: 'error', text: (a) => `bad regular expression: ${a.reason}` },
  BAD_OPERATOR_VALUE: { severity: 'error', text: (a) => `bad value for operator ${q(a.operator)}: ${a.reason}` },
  BAD_DURATION: { severity: 'error', text: (a) => `${a.reason}` },
  BAD_THRESHOLD: { severity: 'error', text: (a) => `threshold must be an integer >= 1, got ${q(a.value)}` },
  BAD_FIELD: { severity: 'error', text: (a) => `bad field ${q(a.field)}: ${a.reason}` },
  DUPLICATE_RULE: { severity: 'error', text: (a) => `rule id ${q(a.id)} is already defined at ${a.first}` },
  DUPLICATE_LIST: { severity: 'error', text: (a) => `list ${q(a.name)} is already defined at ${a.first}` },
  DUPLICATE_STEP: { severity: 'error', text: (a) => `step id ${q(a.id)} is used twice in this rule` },
  UNKNOWN_STEP: { severity: 'error', text: (a) => `"from" names no step: ${q(a.name)} (steps: ${a.steps})` },
  FROM_WITHOUT_STEPS: { severity: 'error', text: (a) => `"from" only applies to sequence and absent rules (this rule is ${a.kind})` },
  SUBJECT_MISMATCH: { severity: 'error', text: (a) => `verdict op ${q(a.op)} cannot apply to subject ${q(a.subject)} (use ${a.allowed})` },
  SUBJECT_UNAVAILABLE: {
    severity: 'error',
    text: (a) => `subject ${q(a.subject)} comes from ${a.needs} events, but the events this verdict is taken from are ${a.types}`,
  },
  FACT_NOT_ON_TYPE: {
    severity: 'warning',
    text: (a) => `fact ${q(a.fact)} exists only on ${a.has} events, but this condition only matches ${a.types} events, so it is always undefined here`,
  },
  INTERNAL: { severity: 'error', text: (a) => `internal error while compiling: ${a.reason}` },
  UNKNOWN_PLACEHOLDER: {
    severity: 'warning',
    text: (a) => `message placeholder {${a.name}} names ${a.reason}; it will print as "?"`,
  },
  NEVER_MATCHES: {
    severity: 'warning',
    text: (a) => `this condition can never be true: ${a.reason}`,
  },
  UNUSED_LIST: { severity: 'warning', text: (a) => `list ${q(a.name)} is not used by any rule` },
  ENFORCE_WITHOUT_VERDICT: {
    severity: 'warning',
    text: () => `mode is "enforce" but the rule has no verdict action and no kernel block, so it enforces nothing`,
  },
} satisfies Record<string, MessageDef>;

export type IssueCode = keyof typeof MESSAGES;

export function messageFor(code: IssueCode, args: Args = {}): { severity: 'error' | 'warning'; message: string } {
  const def: MessageDef = MESSAGES[code];
  const message = def.text(args);
  // reasons quote values too (a duration, a placeholder): no message carries a megabyte of a hostile file
  return { severity: def.severity, message: message.length > 1000 ? `${message.slice(0, 1000)}…` : message };
}

/** closest candidate by edit distance, when close enough to be a likely typo */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  if (name.length > 64) return undefined; // no typo is that long, and the distance is quadratic
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}
