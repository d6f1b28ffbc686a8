// One test run: discover and select tests, run them in worker processes,
// and feed the reporters results in a stable order (each result is passed on
// as soon as every test before it has finished, then dropped). A run can be
// stopped early (a signal, a worker problem): the reporters still get what
// finished, with a summary that says the run is incomplete and why.
import { availableParallelism } from 'node:os';
import { discoverInputs, selectTests, type Selection } from './discover.js';
import { findTestInputs } from './inputs.js';
import type { Isolation } from './executor.js';
import { jobLimit } from './limits.js';
import { PoolError, startWorkers, type WorkerRun } from './pool.js';
import type { ProgressLine } from './progress.js';
import { ReportQueue } from './report-queue.js';
import type { Reporter, RunSummary, TestCase, TestResult } from './types.js';
import { hostFailure, identity } from './verdict.js';

/** A test's time limit when neither it (.timeout_ms) nor the run (--timeout) sets one; runGuest's own default is lower. */
export const DEFAULT_TEST_TIMEOUT_MS = 10_000;

export interface RunOptions extends Selection {
  /** Test binaries, test files (NAME.kvmtest.ts...) and directories to search for them. */
  binaries: readonly string[];
  /** The selected tests, if the caller already discovered them (otherwise found from `binaries`). */
  tests?: readonly TestCase[];
  /** With `tests`: how many tests of the binaries the selection left out (the summary reports it). */
  filteredOut?: number;
  /** Worker processes (default: the number of CPUs, within jobLimit()). */
  jobs?: number;
  isolation?: Isolation;
  timeoutMs?: number;
  /** Most guest memory a test's machine may have, in bytes (default 16 GiB). */
  maxGuestMemory?: bigint;
  /** Stop scheduling tests after this many failures. */
  bail?: number;
  reporters: readonly Reporter[];
  progress?: ProgressLine;
  /**
   * Aborting it stops the run at once: workers are killed, the tests they
   * were running get no result, and the reporters write what finished, as
   * incomplete. The reason (an Error's message, or a string) says why.
   */
  signal?: AbortSignal;
}

export interface RunOutcome {
  summary: RunSummary;
}

/**
 * Runs the tests and resolves once every reporter has written its report.
 * A worker problem that stops the run (a PoolError) rejects, after the
 * reporters have written what finished; so does a reporter that failed,
 * without another word to them.
 */
export async function runTests(options: RunOptions): Promise<RunOutcome> {
  const started = process.hrtime.bigint();
  let tests = options.tests;
  let filteredOut = options.filteredOut ?? 0;
  if (!tests) {
    const all = options.binaries.length === 0 ? [] : (await discoverInputs(findTestInputs(options.binaries))).tests;
    tests = selectTests(all, options);
    filteredOut = all.length - tests.length;
  }
  const binaries = [...new Set(tests.map((t) => t.binary))];
  const { reporters, progress, signal } = options;

  let pool: WorkerRun | undefined;
  let stoppedBecause: string | undefined;
  const stop = (why: string) => {
    stoppedBecause ??= why;
    pool?.stop();
  };
  const reports = new ReportQueue(tests.length, reporters, {
    beforeEvent: () => progress?.clear(),
    onRelief: () => pool?.resume(),
    // Nothing more can be reported: running more tests would be wasted.
    onError: () => stop('the report could not be written'),
  });

  for (const r of reporters) {
    progress?.clear();
    await r.onRunStart?.({ tests, binaries });
  }

  const toRun: number[] = [];
  let failed = 0;
  tests.forEach((test, i) => {
    if (test.ignore && !options.includeIgnored) reports.add(i, ignoredResult(test));
    else if (test.setupError !== undefined) {
      // A test that cannot run (its guest did not build) fails without a worker.
      reports.add(i, hostFailure(test, test.setupError));
      failed++;
    } else toRun.push(i);
  });

  let done = 0;
  const bail = options.bail ?? Infinity;
  pool = startWorkers(toRun.map((i) => tests[i]!), {
    jobs: options.jobs ?? Math.min(availableParallelism(), jobLimit().max),
    // With --bail, one test per batch: a batch's results arrive together, so
    // bigger batches would run (and report) tests past the N-th failure.
    maxBatch: options.bail === undefined ? undefined : 1,
    inFlight: options.bail === undefined ? undefined : 1,
    execution: {
      isolation: options.isolation ?? 'snapshot',
      defaultTimeoutMs: options.timeoutMs ?? DEFAULT_TEST_TIMEOUT_MS,
      ...(options.maxGuestMemory !== undefined && { maxGuestMemory: options.maxGuestMemory }),
    },
    onResult(index, result) {
      reports.add(toRun[index]!, result);
      done++;
      if (result.status === 'failed') failed++;
      progress?.update({ done, total: toRun.length, failed });
    },
    shouldStop: () => failed >= bail,
    // While results pile up (an early test is slow, or the output cannot
    // keep up), only the batch holding the earliest test unreported goes out.
    holdBack: (first) => reports.congested && toRun[first]! > reports.nextIndex,
  });
  if (stoppedBecause !== undefined) pool.stop();

  const onAbort = () => stop(reasonText(signal!.reason));
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });

  let poolError: unknown;
  try {
    await pool.done;
  } catch (err) {
    poolError = err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  // After --bail or a stop, some tests have no result: report the others, in order.
  await reports.finish();
  const reported = reports.counts;
  const summary: RunSummary = {
    passed: reported.passed,
    failed: reported.failed,
    ignored: reported.ignored,
    skipped: reported.skipped,
    filteredOut,
    durationMs: Number(process.hrtime.bigint() - started) / 1e6,
    notRun: tests.length - reported.delivered,
  };
  const incomplete = stoppedBecause ?? (poolError instanceof PoolError ? poolError.message : undefined);
  if (incomplete !== undefined) summary.incomplete = incomplete;
  progress?.clear();
  for (const r of reporters) await r.onRunEnd?.(summary);
  if (poolError) throw poolError;
  return { summary };
}

function reasonText(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  return typeof reason === 'string' ? reason : 'the run was stopped';
}

function ignoredResult(test: TestCase): TestResult {
  return { ...identity(test), status: 'ignored', durationMs: 0, output: '', ...(test.ignoreReason !== undefined && { message: test.ignoreReason }) };
}
