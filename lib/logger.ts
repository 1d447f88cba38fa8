// krsi's logger: pino to stderr; each subsystem takes a child with its own prefix (`component`).
import { pino } from 'pino';

export const logger = pino(
  { name: 'krsi', level: process.env.KRSI_LOG_LEVEL ?? 'info', base: undefined },
  pino.destination({ dest: 2, sync: true }),
);

export function childLogger(component: string) {
  return logger.child({ component });
}
