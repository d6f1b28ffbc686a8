// Messages between the runner and its worker processes (structured clone
// over the IPC channel, so Maps and bigints cross intact), and the layout of
// the small shared "progress" file through which a worker says which test it
// is running without a message per test.
import type { Isolation } from './executor.js';
import type { TestCase, TestResult } from './types.js';

export interface RunBatchMessage {
  type: 'run';
  batch: number;
  binary: string;
  isolation: Isolation;
  defaultTimeoutMs: number;
  tests: TestCase[];
}

export interface ExitMessage {
  type: 'exit';
}

export type ToWorker = RunBatchMessage | ExitMessage;

export interface BatchResultsMessage {
  type: 'results';
  batch: number;
  results: TestResult[];
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

/** Environment variable naming the worker's progress file. */
export const PROGRESS_FILE_ENV = 'KVMTEST_PROGRESS_FILE';
/**
 * Progress file layout (little-endian int32s): [0] batch number, [1] index
 * within the batch of the test running now (-1 between tests), [2] a counter
 * bumped at every test start (the watchdog's heartbeat).
 */
export const PROGRESS_BYTES = 4096;
export const PROGRESS = { batch: 0, index: 1, heartbeat: 2 } as const;
