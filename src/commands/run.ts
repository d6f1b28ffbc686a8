// `kvmtest run`: list or run the tests of test binaries and test files, and report them.
import { KvmUnavailableError } from '../kvm/errors.js';
import { Kvm } from '../kvm/kvm.js';
import { ReportFileError, ReportFile } from '../report/file.js';
import { colorEnabled, type ColorChoice, createReporter, type ReporterName } from '../report/index.js';
import { LIST_FORMATS, type ListFormat, writeTestList } from '../report/list.js';
import { BinaryError, discoverInputs, matchingTests, selectTests, type Selection, TestFileError } from '../runner/discover.js';
import { findTestInputs } from '../runner/inputs.js';
import { TEST_FILE } from '../testfile/load.js';
import type { Isolation } from '../runner/executor.js';
import { PoolError } from '../runner/pool.js';
import { preflight, refuseSharedObjects } from '../runner/preflight.js';
import { snapshotUnsupportedReason } from '../machine/snapshot.js';
import { ProgressLine } from '../runner/progress.js';
import { type RunOutcome, runTests } from '../runner/run.js';
import type { TestCase } from '../runner/types.js';
import { catchInterrupts, type Interrupts, signalExitStatus } from './interrupts.js';

export { COLOR_CHOICES, type ColorChoice } from '../report/index.js';

/** Filters (or skips) were given and no test matched them. */
export const EXIT_NO_TESTS = 3;

export interface RunCommandOptions extends Selection {
  binaries: string[];
  filters: string[];
  skips: string[];
  list: boolean;
  /** pretty: passing tests' output too. */
  showOutput: boolean;
  /** pretty: a character per test. */
  quiet: boolean;
  color: ColorChoice;
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
    const { binaries, tests: all, warnings } = await discoverInputs(findTestInputs(options.binaries));
    for (const warning of warnings) process.stderr.write(`${warning}\n`);
    const tests = selectTests(all, options);
    const selection = { filteredOut: all.length - tests.length, noMatch: noMatch(options, all) };
    if (options.list) return await list(options, tests, selection);
    refuseSharedObjects(binaries);
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
        return await runAndReport(options, tests, selection, file, interrupts);
      } catch (err) {
        file?.discard();
        // A report that cannot be written explains whatever else failed.
        throw file?.error ?? err;
      }
    } finally {
      interrupts.dispose();
    }
  } catch (err) {
    if (err instanceof BinaryError || err instanceof TestFileError || err instanceof KvmUnavailableError || err instanceof PoolError || err instanceof ReportFileError) {
      process.stderr.write(`kvmtest: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

interface SelectionFacts {
  /** Tests of the binaries left out by filters, skips or the shard. */
  filteredOut: number;
  /** What to say when filters or skips were given and matched no test (before sharding), or undefined. */
  noMatch: string | undefined;
}

function noMatch(options: RunCommandOptions, all: readonly TestCase[]): string | undefined {
  if (options.filters.length === 0 && options.skips.length === 0) return undefined;
  if (matchingTests(all, options).length > 0) return undefined;
  const what = [
    ...options.filters.map((f) => `"${f}"`),
    ...options.skips.map((s) => `--skip "${s}"`),
  ].join(', ');
  const inputs = [...new Set(all.map((t) => t.binary))];
  const holder = inputs.length !== 1 ? `${inputs.length} inputs have` : TEST_FILE.test(inputs[0]!) ? 'test file has' : 'binary has';
  return `no test matches ${what}${options.exact ? ' (--exact)' : ''}: the ${holder} ` +
    `${all.length} test${all.length === 1 ? '' : 's'}; \`kvmtest run --list\` shows them`;
}

async function list(options: RunCommandOptions, tests: readonly TestCase[], selection: SelectionFacts): Promise<number> {
  if (!(LIST_FORMATS as readonly string[]).includes(options.reporter)) {
    process.stderr.write(`kvmtest: --list writes ${LIST_FORMATS.join(' or ')} (got --reporter ${options.reporter})\n`);
    return 2;
  }
  const file = options.output ? await ReportFile.open(options.output) : undefined;
  try {
    await writeTestList(file?.stream ?? process.stdout, tests, options.reporter as ListFormat, selection.filteredOut);
    await file?.commit();
  } catch (err) {
    file?.discard();
    throw file?.error ?? err;
  }
  if (selection.noMatch) {
    process.stderr.write(`kvmtest: ${selection.noMatch}\n`);
    return EXIT_NO_TESTS;
  }
  return 0;
}

/** Runs the tests into the report (a file, or standard output); resolves to the exit status. */
async function runAndReport(
  options: RunCommandOptions,
  tests: readonly TestCase[],
  selection: SelectionFacts,
  file: ReportFile | undefined,
  interrupts: Interrupts,
): Promise<number> {
  const out = file?.stream ?? process.stdout;
  const reporter = createReporter(options.reporter, out, {
    color: colorEnabled(out, process.env, options.color),
    showOutput: options.showOutput,
    quiet: options.quiet,
  });
  let outcome: RunOutcome | PoolError;
  try {
    outcome = await runTests({
      ...options,
      tests,
      filteredOut: selection.filteredOut,
      reporters: [reporter],
      progress: new ProgressLine(),
      signal: interrupts.signal,
    });
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
  if (selection.noMatch) {
    process.stderr.write(`kvmtest: ${selection.noMatch}\n`);
    return EXIT_NO_TESTS;
  }
  return summary.failed > 0 ? 1 : 0;
}
