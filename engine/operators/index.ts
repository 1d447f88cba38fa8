// The operator registry: json-rules-engine's built-ins plus krsi's custom operators (one per file).
import { BUILTIN_OPERATORS } from './builtin.ts';
import startsWith from './startsWith.ts';
import endsWith from './endsWith.ts';
import matches from './matches.ts';
import inList from './inList.ts';
import notInList from './notInList.ts';
import bitsSet from './bitsSet.ts';
import anyBitsSet from './anyBitsSet.ts';
import exists from './exists.ts';
import { inInodeList, notInInodeList } from './inodeList.ts';
import type { OperatorDef } from './types.ts';

export type { OperatorDef, OperatorContext, ValueProblem } from './types.ts';

/** krsi's own operators, registered into json-rules-engine by engine/rules/jre.ts */
export const CUSTOM_OPERATORS: OperatorDef<any>[] = [startsWith, endsWith, matches, inList, notInList, bitsSet, anyBitsSet, exists, inInodeList, notInInodeList];

export const OPERATORS: ReadonlyMap<string, OperatorDef<any>> = new Map(
  [...BUILTIN_OPERATORS, ...CUSTOM_OPERATORS].map((o) => [o.name, o]),
);

export const BUILTIN_NAMES = new Set(BUILTIN_OPERATORS.map((o) => o.name));
