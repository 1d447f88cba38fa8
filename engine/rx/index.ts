// krsi's RxJS operators, one per file.
export { operate, type Handlers } from './operate.ts';
export { evaluate, type EngineInput, type EvaluateOptions, type Tick } from './evaluate.ts';
export { heartbeat, type HeartbeatOptions } from './heartbeat.ts';
