// `kvmtest run`: list or run the tests of test binaries and report them.
import { KvmUnavailableError } from '../kvm/errors.js';
import { Kvm } from '../kvm/kvm.js';
import { ReportFileError, ReportFile } from '../report/file.js';
import { createReporter, type ReporterName } from '../report/index.js';
import { BinaryError, readBinaries, selectTests, type Selection } from '../runner/discover.js';
import type { Isolation } from '../runner/executor.js';
import { PoolError } from '../runner/pool.js';
import { preflight } from '../runner/preflight.js';
import { snapshotUnsupportedReason } from '../machine/snapshot.js';
import { ProgressLine } from '../runner/progress.js';
import { type RunOutcome, runTests } from '../runner/run.js';
import type { TestCase } from '../runner/types.js';
import { catchInterrupts, type Interrupts, signalExitStatus } from './interrupts.js';

export interface RunCommandOptions extends Selection {
  binaries: string[];
  filters: string[];
  list: boolean;
  reporter: ReporterName;
  output?: string;
  timeoutMs?: number;
  jobs?: number;
  isolation?: Isolation;
  bail?: number;
  maxGuestMemory?: bigint;
}

export async function runCommand(options: RunCommandOptions): Promise<number> {
  try {
    const binaries = readBinaries(options.binaries);
    const tests = selectTests(binaries.flatMap((b) => b.tests), options);
    if (options.list) return listTests(tests);
    // Check /dev/kvm and the binaries here, once, rather than in every worker.
    const kvm = Kvm.open();
    try {
      preflight(binaries, kvm, options.maxGuestMemory);
      const unsupported = (options.isolation ?? 'snapshot') === 'snapshot' ? snapshotUnsupportedReason(kvm) : undefined;
      if (unsupported) process.stderr.write(`kvmtest: snapshot isolation is off: ${unsupported}; every test gets a fresh VM instead\n`);
    } finally {
      kvm.close();
    }
    // From here on a signal stops the run and still leaves a report, and no temporary files.
    const interrupts = catchInterrupts();
    try {
      // Opened only once the run can start: a usage error leaves an existing report alone.
      const file = options.output ? await ReportFile.open(options.output) : undefined;
      try {
        return await runAndReport(options, tests, file, interrupts);
      } catch (err) {
        file?.discard();
        // A report that cannot be written explains whatever else failed.
        throw file?.error ?? err;
      }
    } finally {
      interrupts.dispose();
    }
  } catch (err) {
    if (err instanceof BinaryError || err instanceof KvmUnavailableError || err instanceof PoolError || err instanceof ReportFileError) {
      process.stderr.write(`kvmtest: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

/** Runs the tests into the report (a file, or standard output); resolves to the exit status. */
async function runAndReport(
  options: RunCommandOptions,
  tests: readonly TestCase[],
  file: ReportFile | undefined,
  interrupts: Interrupts,
): Promise<number> {
  const reporter = createReporter(options.reporter, file?.stream ?? process.stdout);
  let outcome: RunOutcome | PoolError;
  try {
    outcome = await runTests({ ...options, tests, reporters: [reporter], progress: new ProgressLine(), signal: interrupts.signal });
  } catch (err) {
    // A worker problem that stopped the run: the report of what finished is written, and kept.
    if (!(err instanceof PoolError) || file?.error) throw err;
    outcome = err;
  }
  await file?.commit();
  if (outcome instanceof PoolError) throw outcome;
  const { summary } = outcome;
  if (interrupts.received) {
    // The pretty report on standard output says so already; the others need a word on stderr.
    const reportSaysIt = options.reporter === 'pretty' && file === undefined;
    if (!reportSaysIt) process.stderr.write(`kvmtest: ${summary.incomplete ?? `interrupted by ${interrupts.received}`}; ${summary.notRun} test(s) not run\n`);
    return signalExitStatus(interrupts.received);
  }
  if (summary.notRun > 0) process.stderr.write(`kvmtest: stopped after ${summary.failed} failure(s) (--bail); ${summary.notRun} test(s) not run\n`);
  return summary.failed > 0 ? 1 : 0;
}

function listTests(tests: readonly TestCase[]): number {
  const binaries = [...new Set(tests.map((t) => t.binary))];
  for (const binary of binaries) {
    if (binaries.length > 1) process.stdout.write(`${binary}:\n`);
    for (const t of tests) if (t.binary === binary) process.stdout.write(`${t.name}: test${t.ignore ? ' (ignored)' : ''}\n`);
  }
  process.stdout.write(`${tests.length > 0 ? '\n' : ''}${tests.length} test${tests.length === 1 ? '' : 's'}\n`);
  return 0;
}

