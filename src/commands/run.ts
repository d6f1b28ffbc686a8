// `kvmtest run`: list or run the tests of test binaries and report them.
import { createWriteStream, type WriteStream } from 'node:fs';
import { KvmUnavailableError } from '../kvm/errors.js';
import { Kvm } from '../kvm/kvm.js';
import { createReporter, type ReporterName } from '../report/index.js';
import { BinaryError, readBinaries, selectTests, type Selection } from '../runner/discover.js';
import type { Isolation } from '../runner/executor.js';
import { PoolError } from '../runner/pool.js';
import { preflight } from '../runner/preflight.js';
import { ProgressLine } from '../runner/progress.js';
import { runTests } from '../runner/run.js';
import type { TestCase } from '../runner/types.js';

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
}

export async function runCommand(options: RunCommandOptions): Promise<number> {
  try {
    const binaries = readBinaries(options.binaries);
    const tests = selectTests(binaries.flatMap((b) => b.tests), options);
    if (options.list) return listTests(tests);
    // Check /dev/kvm and the binaries here, once, rather than in every worker.
    const kvm = Kvm.open();
    try {
      preflight(binaries, kvm);
    } finally {
      kvm.close();
    }
    // Opened only once the run can start: a usage error leaves an existing report alone.
    const file = options.output ? await openOutput(options.output) : undefined;
    const out = file ?? process.stdout;
    const reporter = createReporter(options.reporter, out);
    const { summary } = await runTests({
      ...options,
      tests,
      reporters: [reporter],
      progress: new ProgressLine(),
    });
    if (file) await new Promise<void>((resolve, reject) => file.end((err?: Error | null) => (err ? reject(err) : resolve())));
    if (summary.notRun > 0) process.stderr.write(`kvmtest: stopped after ${summary.failed} failure(s) (--bail); ${summary.notRun} test(s) not run\n`);
    return summary.failed > 0 ? 1 : 0;
  } catch (err) {
    if (err instanceof BinaryError || err instanceof KvmUnavailableError || err instanceof PoolError || err instanceof OutputError) {
      process.stderr.write(`kvmtest: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
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

class OutputError extends Error {}

function openOutput(path: string): Promise<WriteStream> {
  return new Promise((resolve, reject) => {
    const stream = createWriteStream(path);
    stream.once('open', () => resolve(stream));
    stream.once('error', (err) => reject(new OutputError(`cannot write the report to ${path}: ${err.message}`)));
  });
}
