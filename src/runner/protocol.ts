// Messages between the runner and its worker processes (structured clone
// over the IPC channel, so Maps and bigints cross intact), and the layout of
// the small shared "progress" file through which a worker says which test it
// is running without a message per test.
import type { ExecutionOptions } from './executor.js';
import type { TestCase, TestResult } from './types.js';
import { identity } from './verdict.js';

export interface RunBatchMessage {
  type: 'run';
  batch: number;
  binary: string;
  execution: ExecutionOptions;
  /**
   * The tests to run, by the address of their record in the binary's test
   * table: the worker reads the table itself, so tests cross as 8 bytes each.
   */
  records: BigUint64Array;
  /** For a test file: the guest ELF the runner built from its snippets. */
  guestElf?: string;
}

export interface ExitMessage {
  type: 'exit';
}

export type ToWorker = RunBatchMessage | ExitMessage;

/**
 * A batch's results. Most tests simply pass: for those only the duration
 * crosses (in `durations`, indexed like the batch), since the runner knows
 * their names; every other result crosses whole in `others`. This keeps the
 * runner's share of the work per test small, which matters with as many
 * workers as CPUs.
 */
export interface BatchResultsMessage {
  type: 'results';
  batch: number;
  durations: Float64Array;
  others: Map<number, TestResult>;
}

/** True for a result that `durations` alone can carry. */
export function isPlainPass(result: TestResult): boolean {
  return (
    result.status === 'passed' &&
    result.outcome === 'returned' &&
    result.output === '' &&
    result.message === undefined &&
    result.fault === undefined
  );
}

/** Rebuilds a plain pass from its test and duration. */
export function plainPass(test: TestCase, durationMs: number): TestResult {
  return { ...identity(test), status: 'passed', outcome: 'returned', durationMs, output: '' };
}

/** The worker cannot run anything (no /dev/kvm, unreadable binary...): the run must stop. */
export interface FatalMessage {
  type: 'fatal';
  batch: number;
  message: string;
}

export interface ReadyMessage {
  type: 'ready';
}

export type FromWorker = BatchResultsMessage | FatalMessage | ReadyMessage;

/**
 * Environment variable with the runner's pid: a worker that finds another
 * parent has outlived its runner (see worker-main.ts) and exits.
 */
export const RUNNER_PID_ENV = 'KVMTEST_RUNNER_PID';

/** Environment variable naming the worker's progress file. */
export const PROGRESS_FILE_ENV = 'KVMTEST_PROGRESS_FILE';
/**
 * Progress file layout (little-endian int32s): [0] batch number, [1] index
 * within the batch of the test running now (-1 between tests), [2] a counter
 * bumped at every test start (the watchdog's heartbeat).
 */
export const PROGRESS_BYTES = 4096;
export const PROGRESS = { batch: 0, index: 1, heartbeat: 2 } as const;
