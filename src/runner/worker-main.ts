// A worker process: receives batches of tests of one binary (or test file),
// runs them with its executor (one VM reused per binary, or one per test),
// and sends back each batch's results. Before each test it records which one in a
// shared progress file, so that if this process dies the runner knows which
// test killed it. It lives and dies with its runner: signals that would
// stop a run are the runner's to handle, and the kernel kills this process
// when the runner dies, even in the middle of KVM_RUN.
import { constants } from 'node:os';
import { getppid, mapSharedFile, setParentDeathSignal } from '../kvm/libc.js';
import { getRunTimer } from '../session/host.js';
import { recordLocations } from '../testfile/location.js';
import {
  type FromWorker,
  isPlainPass,
  PROGRESS,
  PROGRESS_BYTES,
  PROGRESS_FILE_ENV,
  type RunBatchMessage,
  RUNNER_PID_ENV,
  type ToWorker,
} from './protocol.js';
import type { TestCase, TestResult } from './types.js';
import { hostFailure } from './verdict.js';
import { type LoadedBinary, WorkerBinaries } from './worker-binaries.js';

// Ctrl-C reaches the whole process group, this worker included: the runner
// decides what happens (it stops the run and kills its workers).
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
// The runner may die without a word (SIGKILL, a crash): then so do we.
setParentDeathSignal(constants.signals.SIGKILL);
// It may have died before the line above: then our parent is already another process.
const runnerPid = Number(process.env[RUNNER_PID_ENV]);
if (runnerPid && getppid() !== runnerPid) process.exit(1);

// Test files' declarations need not say where they are: the runner knows.
recordLocations(false);
const binaries = new WorkerBinaries();
const progressPath = process.env[PROGRESS_FILE_ENV];
// Mapped for the process's lifetime: the runner reads it after this process is gone.
const progress = progressPath ? new Int32Array(mapSharedFile(progressPath, PROGRESS_BYTES).buffer) : new Int32Array(3);

function send(message: FromWorker): void {
  process.send!(message);
}

/** A host-side exception while running one test fails that test, not the run. */
function internalFailure(test: TestCase, err: unknown): TestResult {
  return hostFailure(test, `kvmtest internal error while running this test: ${(err as Error).stack ?? String(err)}`);
}

async function runBatch(message: RunBatchMessage): Promise<void> {
  let loaded: LoadedBinary;
  let tests: TestCase[];
  try {
    loaded = await binaries.load(message.binary, message.execution, message.guestElf);
    tests = Array.from(message.records, (record) => loaded.test(record));
  } catch (err) {
    send({ type: 'fatal', batch: message.batch, message: (err as Error).message });
    return;
  }
  const durations = new Float64Array(tests.length);
  const others = new Map<number, TestResult>();
  progress[PROGRESS.batch] = message.batch;
  for (const [index, test] of tests.entries()) {
    progress[PROGRESS.index] = index;
    progress[PROGRESS.heartbeat] = (progress[PROGRESS.heartbeat]! + 1) | 0;
    let result: TestResult;
    try {
      const ran = loaded.run(test);
      // C tests finish at once; only a test file's tests may wait.
      result = ran instanceof Promise ? await ran : ran;
    } catch (err) {
      // The machine may be in any state: drop it, keep going.
      loaded.close();
      result = internalFailure(test, err);
    }
    durations[index] = result.durationMs;
    if (!isPlainPass(result)) others.set(index, result);
  }
  progress[PROGRESS.index] = -1;
  getRunTimer().stop();
  send({ type: 'results', batch: message.batch, durations, others });
}

// Batches run one after another, in the order they came, even when a test
// file's tests wait on the event loop.
let batches = Promise.resolve();

process.on('message', (message: ToWorker) => {
  if (message.type === 'run') {
    batches = batches
      .then(() => runBatch(message))
      .catch((err: unknown) => send({ type: 'fatal', batch: message.batch, message: `kvmtest internal error in a worker: ${(err as Error)?.stack ?? String(err)}` }));
  }
  else if (message.type === 'exit') {
    void batches.then(() => {
      binaries.closeAll();
      process.exit(0);
    });
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
