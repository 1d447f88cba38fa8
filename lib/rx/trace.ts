// Which pipeline stages ran and how many values each passed on. Every operator is built through
// operate() (lib/rx/operate.ts), which counts here under the operator's name, so a command can say
// which stages its data went through: `KRSI_PIPELINE_TRACE=1 krsi replay` prints them on exit
// (cli/main.ts), and the tests read that to prove replay and run share the pipeline.

export interface StageCount {
  stage: string;
  /** times the stage was subscribed (a pipeline run) */
  runs: number;
  /** values it passed on (events, batches, ticks or outputs) */
  values: number;
  /** when it first ran (orders the trace) */
  first: number;
}

const stages = new Map<string, StageCount>();
let runs = 0;

/** the counter of one stage, made on first use: stages are listed in the order they first ran */
export function stageCount(name: string): StageCount {
  let s = stages.get(name);
  if (s === undefined) stages.set(name, (s = { stage: name, runs: 0, values: 0, first: 0 }));
  return s;
}

/** a stage was subscribed; operate() calls it after the stage's upstream subscribed, so a source
 *  counts as running before the stages it feeds */
export function stageRan(s: StageCount): void {
  if (s.runs++ === 0) s.first = ++runs;
}

/** the stages that ran so far, source first */
export function pipelineTrace(): StageCount[] {
  return [...stages.values()].filter((s) => s.runs > 0).sort((a, b) => a.first - b.first);
}

/** "from-log 3 → evaluate 3 → ...": each stage with the values it passed on */
export function formatTrace(t: StageCount[] = pipelineTrace()): string {
  return t.map((s) => `${s.stage} ${s.values}`).join(' → ');
}
