// What SIGINT and SIGTERM do to `kvmtest run` (Ctrl-C sends SIGINT to the
// whole process group; a CI time limit usually sends SIGTERM). The first one
// asks the run to stop: it kills its workers and writes the report of what
// finished, and the command then exits with 128 + the signal's number, as a
// shell reports a process killed by it. A second one ends the process at
// once (the exit handlers still remove temporary files).
import { constants } from 'node:os';

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
export type InterruptSignal = (typeof SIGNALS)[number];

export interface Interrupts {
  /** Aborted at the first signal, with a reason such as "interrupted by SIGINT". */
  signal: AbortSignal;
  /** The first signal received, if any. */
  readonly received: InterruptSignal | undefined;
  /** Restores the default behaviour of the signals. */
  dispose(): void;
}

/** 130 for SIGINT, 143 for SIGTERM. */
export function signalExitStatus(signal: InterruptSignal): number {
  return 128 + constants.signals[signal];
}

export function catchInterrupts(): Interrupts {
  const controller = new AbortController();
  let received: InterruptSignal | undefined;
  const handlers = SIGNALS.map((name) => {
    const handler = () => {
      if (received !== undefined) process.exit(signalExitStatus(received));
      received = name;
      controller.abort(`interrupted by ${name}`);
    };
    process.on(name, handler);
    return () => process.off(name, handler);
  });
  return {
    signal: controller.signal,
    get received() {
      return received;
    },
    dispose() {
      for (const remove of handlers) remove();
    },
  };
}
