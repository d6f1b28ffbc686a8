// Runs tests in worker processes, `jobs` at a time. Tests go out in batches
// (one IPC round trip per batch, not per test), grouped by binary so a worker
// reuses its machine. A worker that dies fails only the test it was running
// (its progress file says which); the rest of its batch is run again by a
// fresh worker. A watchdog kills a worker whose test overstays its timeout
// by far (a guest stuck where the in-worker timer cannot stop it). A run can
// be held back (its reporters are behind) and stopped (a signal): then every
// worker is killed, and the run ends once they are all gone.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mapSharedFile } from '../kvm/libc.js';
import { TEST_FILE } from '../testfile/load.js';
import type { ExecutionOptions } from './executor.js';
import { type FromWorker, plainPass, PROGRESS, PROGRESS_BYTES, PROGRESS_FILE_ENV, type RunBatchMessage, RUNNER_PID_ENV } from './protocol.js';
import type { TestCase, TestResult } from './types.js';
import { hostFailure } from './verdict.js';
import { WorkQueue } from './work-queue.js';

export interface PoolOptions {
  jobs: number;
  /** Most tests per batch (default 128). */
  maxBatch?: number;
  /**
   * Batches sent to a worker ahead of its results (default 2): the next one
   * waits in its pipe, so the worker never idles through a round trip.
   */
  inFlight?: number;
  execution: ExecutionOptions;
  /** Called once per finished test, in completion order, with its index in `tests`. */
  onResult(index: number, result: TestResult): void;
  /** Checked before each batch is handed out (--bail). */
  shouldStop?(): boolean;
  /**
   * Checked before a batch whose first test is `first` is handed out: true
   * means not now (the reporters are behind); resume() asks again. The
   * caller must let through the batch that holds the earliest test still
   * unfinished, which this pool always hands out first, so a run held back
   * cannot stall.
   */
  holdBack?(first: number): boolean;
}

/** A run in worker processes, under way. */
export interface WorkerRun {
  /**
   * Resolves once every test has a result, or the run was stopped (then
   * some have none); rejects with a PoolError when the run cannot go on,
   * after the workers still busy have finished their batches.
   */
  done: Promise<void>;
  /** Hands out work again after holdBack() said no. */
  resume(): void;
  /**
   * Stops at once: no more batches, every worker killed (tests running then
   * get no result). `done` resolves once every worker has exited.
   */
  stop(): void;
}

/** A worker or binary problem that makes the whole run impossible (exit status 2). */
export class PoolError extends Error {}

const MAX_BATCH = 128;
const IN_FLIGHT = 2;
/** How long past its timeout a silent test may run before its worker is killed. */
const WATCHDOG_GRACE_MS = 10_000;
const WATCHDOG_INTERVAL_MS = 500;
const STDERR_TAIL = 4096;
/** Worker deaths outside any test (loading a binary, sending results) tolerated per run. */
const MAX_DEATHS_OUTSIDE_TESTS = 3;
const WORKER_SCRIPT = new URL('./worker-main.js', import.meta.url);

interface Batch {
  id: number;
  binary: string;
  /** The binary is a test file, whose code is the user's. */
  testFile: boolean;
  /** Indices into the tests array. */
  indices: number[];
}

interface Worker {
  child: ChildProcess;
  progress: Int32Array;
  unmapProgress(): void;
  /** Batches sent and not yet answered, oldest (the one running) first. */
  batches: Batch[];
  stderr: string;
  heartbeat: number;
  heartbeatAt: number;
  killedByWatchdog: string | undefined;
  /** Set once the worker has said it is ready: it started properly. */
  ready: boolean;
}

export function startWorkers(tests: readonly TestCase[], options: PoolOptions): WorkerRun {
  if (tests.length === 0) return { done: Promise.resolve(), resume() {}, stop() {} };
  const dir = mkdtempSync(join(tmpdir(), 'kvmtest-'));
  // Also when the process exits without finishing the run (a second Ctrl-C).
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);
  const queue = new WorkQueue(tests.length);
  let nextBatchId = 1;
  let deathsOutsideTests = 0;
  let failure: Error | undefined;
  let stopping = false;
  /** Set when holdBack() refused a batch: resume() has something to do. */
  let heldBack = false;
  const workers = new Set<Worker>();
  let workerCount = 0;

  let finished = false;
  let settle!: { resolve(): void; reject(err: Error): void };
  const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  const finish = () => {
    if (finished) return;
    finished = true;
    clearInterval(watchdog);
    for (const w of workers) {
      w.child.removeAllListeners('exit');
      if (w.child.connected) w.child.send({ type: 'exit' });
      w.unmapProgress();
    }
    removeDir();
    process.off('exit', removeDir);
    if (failure) settle.reject(failure);
    else settle.resolve();
  };

  const takeBatch = (): Batch | undefined => {
    if (queue.length === 0 || failure || stopping || options.shouldStop?.()) return undefined;
    if (options.holdBack?.(queue.peek())) {
      heldBack = true;
      return undefined;
    }
    const binary = tests[queue.peek()]!.binary;
    // Smaller batches near the end keep every worker busy until the last test.
    const share = Math.ceil(queue.length / (options.jobs * 4));
    const size = Math.max(1, Math.min(options.maxBatch ?? MAX_BATCH, share));
    const indices: number[] = [];
    while (indices.length < size && queue.length > 0 && tests[queue.peek()]!.binary === binary) indices.push(queue.take());
    return { id: nextBatchId++, binary, indices, testFile: TEST_FILE.test(binary) };
  };

  const busy = () => [...workers].some((x) => x.batches.length > 0);
  // Nobody has work and none will be handed out (a run held back waits for resume()).
  const over = () => !busy() && (queue.length === 0 || failure !== undefined || options.shouldStop?.() === true);

  /** Tops up a worker's batches in flight; ends the run when nobody has work left. */
  const feed = (w: Worker) => {
    if (stopping) return;
    while (w.batches.length < (options.inFlight ?? IN_FLIGHT)) {
      const batch = takeBatch();
      if (!batch) break;
      if (w.batches.length === 0) {
        // The watchdog counts silence from when a worker had work again.
        w.heartbeat = w.progress[PROGRESS.heartbeat]!;
        w.heartbeatAt = Date.now();
      }
      w.batches.push(batch);
      const message: RunBatchMessage = {
        type: 'run',
        batch: batch.id,
        binary: batch.binary,
        execution: options.execution,
        records: BigUint64Array.from(batch.indices, (i) => tests[i]!.record),
      };
      const guestElf = tests[batch.indices[0]!]!.guestElf;
      if (guestElf !== undefined) message.guestElf = guestElf;
      w.child.send(message);
    }
    if (over()) finish();
  };

  const spawn = () => {
    const progressPath = join(dir, `worker-${++workerCount}`);
    writeFileSync(progressPath, Buffer.alloc(PROGRESS_BYTES));
    const child = fork(WORKER_SCRIPT, [], {
      serialization: 'advanced',
      // A test file's own console output (its top level, its callbacks) goes to
      // standard error: standard output carries the report.
      stdio: ['ignore', 2, 'pipe', 'ipc'],
      env: { ...process.env, [PROGRESS_FILE_ENV]: progressPath, [RUNNER_PID_ENV]: String(process.pid) },
    });
    const mapping = mapSharedFile(progressPath, PROGRESS_BYTES);
    const w: Worker = {
      child,
      progress: new Int32Array(mapping.buffer),
      unmapProgress: mapping.unmap,
      batches: [],
      stderr: '',
      heartbeat: 0,
      heartbeatAt: Date.now(),
      killedByWatchdog: undefined,
      ready: false,
    };
    workers.add(w);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      // A test file's own code may write there (console.error in a
      // callback): passed on as it comes. The tail is kept for the message
      // if the worker dies.
      if (w.batches.some((b) => b.testFile)) process.stderr.write(chunk);
      w.stderr = (w.stderr + chunk).slice(-STDERR_TAIL);
    });
    child.on('message', (message: FromWorker) => {
      if (finished) return;
      if (message.type === 'ready') {
        w.ready = true;
        return feed(w);
      }
      if (message.type === 'fatal') {
        failure ??= new PoolError(message.message);
        w.batches.length = 0;
        return feed(w);
      }
      // A worker answers its batches in the order it got them.
      const batch = w.batches.shift()!;
      batch.indices.forEach((index, i) => {
        const test = tests[index]!;
        const other = message.others.get(i);
        // Where a test is declared is the runner's to say (a worker may not know it: see recordLocations).
        options.onResult(index, other ? { ...other, file: test.file, line: test.line } : plainPass(test, message.durations[i]!));
      });
      feed(w);
    });
    child.on('error', (err) => {
      failure ??= new PoolError(`cannot start a worker process: ${err.message}`);
    });
    child.on('exit', (code, signal) => {
      workers.delete(w);
      if (stopping) {
        // Killed by stop(): what it was running has no result.
        w.unmapProgress();
        if (workers.size === 0) finish();
        return;
      }
      // Read the progress record before it goes away.
      const running = w.progress[PROGRESS.index]!;
      const runningBatch = w.progress[PROGRESS.batch]!;
      w.unmapProgress();
      const how = w.killedByWatchdog ?? (signal ? `was killed by signal ${signal}` : `exited with status ${code}`);
      if (w.batches.length > 0) {
        // Every unanswered batch goes back to the queue, but for the one
        // test the progress record shows running: that test failed.
        let blamed = false;
        for (const batch of w.batches) {
          const crashed = runningBatch === batch.id ? running : -1;
          if (crashed >= 0 && crashed < batch.indices.length) {
            const index = batch.indices[crashed]!;
            options.onResult(index, workerDied(tests[index]!, how, w.stderr));
            queue.putBack(batch.indices.filter((_, i) => i !== crashed));
            blamed = true;
          } else {
            queue.putBack(batch.indices);
          }
        }
        w.batches.length = 0;
        // Died while loading the binary or sending results: nothing to
        // blame a test for. Run its batches again, but not forever.
        if (!blamed && ++deathsOutsideTests >= MAX_DEATHS_OUTSIDE_TESTS) {
          failure ??= new PoolError(`worker processes died ${deathsOutsideTests} times outside any test; the last one ${how}${stderrTail(w.stderr)}`);
        }
      } else if (!w.ready) {
        // Died while starting: it had no work, so nothing is lost. Start
        // another, but not forever (workers that cannot start at all).
        if (++deathsOutsideTests >= MAX_DEATHS_OUTSIDE_TESTS) {
          failure ??= new PoolError(`worker processes died ${deathsOutsideTests} times outside any test; the last one ${how} while starting${stderrTail(w.stderr)}`);
        }
      }
      // An idle worker that died lost nothing: a new one is started if work is left.
      if (!failure && queue.length > 0) spawn();
      else if (over()) finish();
    });
  };

  const watchdog = setInterval(() => {
    const now = Date.now();
    for (const w of workers) {
      const batch = w.batches[0];
      if (!batch || w.killedByWatchdog) continue;
      const beat = w.progress[PROGRESS.heartbeat]!;
      if (beat !== w.heartbeat) {
        w.heartbeat = beat;
        w.heartbeatAt = now;
        continue;
      }
      const running = w.progress[PROGRESS.index]!;
      const test = tests[batch.indices[Math.min(batch.indices.length - 1, Math.max(0, running))]!]!;
      const limit = (test.timeoutMs || options.execution.defaultTimeoutMs) + WATCHDOG_GRACE_MS;
      if (now - w.heartbeatAt > limit) {
        w.killedByWatchdog = `stopped responding for ${Math.round((now - w.heartbeatAt) / 1000)} s (its timeout could not stop the guest) and was killed`;
        w.child.kill('SIGKILL');
      }
    }
  }, WATCHDOG_INTERVAL_MS);
  watchdog.unref();

  for (let i = 0; i < Math.min(options.jobs, tests.length); i++) spawn();

  return {
    done,
    resume() {
      if (!heldBack || finished || stopping) return;
      heldBack = false;
      for (const w of workers) if (w.ready) feed(w);
    },
    stop() {
      if (finished || stopping) return;
      stopping = true;
      for (const w of workers) w.child.kill('SIGKILL');
      if (workers.size === 0) finish();
    },
  };
}


/** A worker's last words for a message, or nothing when it wrote none. */
function stderrTail(stderr: string): string {
  return stderr.trim() ? `; its standard error:\n${stderr.trim()}` : '';
}

function workerDied(test: TestCase, how: string, stderr: string): TestResult {
  const tail = stderr.trim() ? `\nworker stderr:\n${stderr.trim()}` : '';
  return hostFailure(test, `the worker process running this test ${how}; the other tests went on in a new worker${tail}`);
}
