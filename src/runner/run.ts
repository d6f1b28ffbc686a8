// One test run: discover and select tests, run them in worker processes,
// and feed the reporters results in a stable order (each result is passed on
// as soon as every test before it has finished).
import { availableParallelism } from 'node:os';
import { DEFAULT_TIMEOUT_MS } from '../run-guest.js';
import { discoverTests, selectTests, type Selection } from './discover.js';
import type { Isolation } from './executor.js';
import { jobLimit } from './limits.js';
import { runInWorkers } from './pool.js';
import type { ProgressLine } from './progress.js';
import type { Reporter, RunSummary, TestCase, TestResult } from './types.js';

export interface RunOptions extends Selection {
  binaries: readonly string[];
  /** The selected tests, if the caller already discovered them (otherwise found from `binaries`). */
  tests?: readonly TestCase[];
  /** Worker processes (default: the number of CPUs, within jobLimit()). */
  jobs?: number;
  isolation?: Isolation;
  timeoutMs?: number;
  /** Stop scheduling tests after this many failures. */
  bail?: number;
  reporters: readonly Reporter[];
  progress?: ProgressLine;
}

export interface RunOutcome {
  results: TestResult[];
  summary: RunSummary;
  /** Tests never started because of --bail. */
  notRun: number;
}

export async function runTests(options: RunOptions): Promise<RunOutcome> {
  const started = process.hrtime.bigint();
  const tests = options.tests ?? selectTests(discoverTests(options.binaries), options);
  const binaries = [...new Set(tests.map((t) => t.binary))];
  const { reporters, progress } = options;
  const emit = (event: (r: Reporter) => void) => {
    progress?.clear();
    for (const r of reporters) event(r);
  };
  emit((r) => r.onRunStart?.({ tests, binaries }));

  const results: Array<TestResult | undefined> = new Array(tests.length);
  const toRun: number[] = [];
  tests.forEach((test, i) => {
    if (test.ignore && !options.includeIgnored) results[i] = ignoredResult(test);
    else toRun.push(i);
  });

  let nextToEmit = 0;
  let done = 0;
  let failed = 0;
  const flush = () => {
    while (nextToEmit < tests.length && results[nextToEmit]) {
      const result = results[nextToEmit++]!;
      emit((r) => r.onTestResult?.(result));
    }
  };
  flush();

  const bail = options.bail ?? Infinity;
  await runInWorkers(toRun.map((i) => tests[i]!), {
    jobs: options.jobs ?? Math.min(availableParallelism(), jobLimit().max),
    // With --bail, one test per batch: a batch's results arrive together, so
    // bigger batches would run (and report) tests past the N-th failure.
    maxBatch: options.bail === undefined ? undefined : 1,
    inFlight: options.bail === undefined ? undefined : 1,
    isolation: options.isolation ?? 'snapshot',
    defaultTimeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    onResult(index, result) {
      results[toRun[index]!] = result;
      done++;
      if (result.status === 'failed') failed++;
      flush();
      progress?.update({ done, total: toRun.length, failed });
    },
    shouldStop: () => failed >= bail,
  });

  // After --bail, some tests have no result: report the others, in order.
  const finished = results.filter((r): r is TestResult => r !== undefined);
  for (; nextToEmit < tests.length; nextToEmit++) {
    const result = results[nextToEmit];
    if (result) emit((r) => r.onTestResult?.(result));
  }
  const summary: RunSummary = {
    passed: finished.filter((r) => r.status === 'passed').length,
    failed: finished.filter((r) => r.status === 'failed').length,
    ignored: finished.filter((r) => r.status === 'ignored').length,
    durationMs: Number(process.hrtime.bigint() - started) / 1e6,
  };
  progress?.clear();
  for (const r of reporters) await r.onRunEnd?.(finished, summary);
  return { results: finished, summary, notRun: tests.length - finished.length };
}

function ignoredResult(test: TestCase): TestResult {
  return { name: test.name, binary: test.binary, status: 'ignored', durationMs: 0, output: '' };
}
