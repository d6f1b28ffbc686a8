// A worker process: receives batches of tests of one binary, runs them with
// a BinaryExecutor (one VM reused per binary, or one per test), and sends
// back each batch's results. Before each test it records which one in a
// shared progress file, so that if this process dies the runner knows which
// test killed it.
import { readFileSync } from 'node:fs';
import { loadImage } from '../image/image.js';
import { mapSharedFile } from '../kvm/libc.js';
import { getKvm, getRunTimer } from '../run-guest.js';
import { BinaryExecutor, type Isolation } from './executor.js';
import { type FromWorker, PROGRESS, PROGRESS_BYTES, PROGRESS_FILE_ENV, type RunBatchMessage, type ToWorker } from './protocol.js';
import type { TestCase, TestResult } from './types.js';

const executors = new Map<string, BinaryExecutor>();
const progressPath = process.env[PROGRESS_FILE_ENV];
const progress = progressPath ? new Int32Array(mapSharedFile(progressPath, PROGRESS_BYTES)) : new Int32Array(3);

function send(message: FromWorker): void {
  process.send!(message);
}

function executorFor(binary: string, isolation: Isolation, defaultTimeoutMs: number): BinaryExecutor {
  const key = `${isolation}:${defaultTimeoutMs}:${binary}`;
  let executor = executors.get(key);
  if (!executor) {
    const image = loadImage({ elfBytes: readFileSync(binary), name: binary });
    executor = new BinaryExecutor(getKvm(), getRunTimer(), image, { isolation, defaultTimeoutMs });
    executors.set(key, executor);
  }
  return executor;
}

/** A host-side exception while running one test fails that test, not the run. */
function internalFailure(test: TestCase, err: unknown): TestResult {
  return {
    name: test.name,
    binary: test.binary,
    status: 'failed',
    outcome: 'error',
    durationMs: 0,
    output: '',
    message: `kvmtest internal error while running this test: ${(err as Error).stack ?? String(err)}`,
  };
}

function runBatch(message: RunBatchMessage): void {
  let executor: BinaryExecutor;
  try {
    executor = executorFor(message.binary, message.isolation, message.defaultTimeoutMs);
  } catch (err) {
    send({ type: 'fatal', batch: message.batch, message: (err as Error).message });
    return;
  }
  const results: TestResult[] = [];
  progress[PROGRESS.batch] = message.batch;
  message.tests.forEach((test, index) => {
    progress[PROGRESS.index] = index;
    progress[PROGRESS.heartbeat] = (progress[PROGRESS.heartbeat]! + 1) | 0;
    try {
      results.push(executor.run(test));
    } catch (err) {
      // The machine may be in any state: drop it, keep going.
      executor.close();
      results.push(internalFailure(test, err));
    }
  });
  progress[PROGRESS.index] = -1;
  getRunTimer().stop();
  send({ type: 'results', batch: message.batch, results });
}

process.on('message', (message: ToWorker) => {
  if (message.type === 'run') runBatch(message);
  else if (message.type === 'exit') {
    for (const executor of executors.values()) executor.close();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
