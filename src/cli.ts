// The kvmtest command line: parses arguments, then hands over to a command.
// Each command's options are one table (args.ts), which both the parser and
// the command's help are made from.
import { existsSync, readFileSync } from 'node:fs';
import { closest, type OptionSpec, parseOptions, renderOptions, UsageError } from './args.js';
import { ccCommand } from './commands/cc.js';
import { doctorCommand } from './commands/doctor.js';
import { type ColorChoice, COLOR_CHOICES, runCommand, type RunCommandOptions } from './commands/run.js';
import { REPORTER_NAMES } from './report/index.js';
import { ISOLATION_MODES, type Isolation } from './runner/executor.js';
import { jobLimit, MAX_SHARDS } from './runner/limits.js';
import { TEST_FILE } from './testfile/load.js';

export { UsageError } from './args.js';

/** Exit statuses; docs/guide.md has the table. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export { EXIT_NO_TESTS } from './commands/run.js';

const OVERVIEW = `kvmtest: unit tests for x86-64 ring-0 code, each in its own tiny KVM virtual machine

usage:
  kvmtest cc [--higher-half] [--allow-simd] [compiler args...] -o TESTS.elf SOURCES...
      compile and link C and assembly test sources with the kvmtest SDK
  kvmtest run [options] [TESTS.elf | FILE.kvmtest.ts | DIR]... [FILTER...]
      run the tests of test binaries and TypeScript test files
  kvmtest doctor
      say what this host's KVM can do
  kvmtest help COMMAND | COMMAND --help
      a command's usage and options
  kvmtest --version`;

const EXIT_STATUSES = `exit status: 0 all tests passed, 1 some failed, 2 usage or environment error
(also a run that had to stop early), 3 filters matched no test,
130 or 143 after SIGINT or SIGTERM`;

function runDefaults(): RunCommandOptions {
  return {
    binaries: [],
    filters: [],
    skips: [],
    exact: false,
    list: false,
    includeIgnored: false,
    reporter: 'pretty',
    showOutput: false,
    quiet: false,
    color: 'auto',
  };
}

function oneOf<T extends string>(name: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) {
    const near = closest(value, choices);
    throw new UsageError(`${name} must be ${choices.join(', ').replace(/, ([^,]*)$/, ' or $1')} (got "${value}")${near ? `; did you mean ${near}?` : ''}`);
  }
  return value as T;
}

const RUN_OPTIONS: readonly OptionSpec<RunCommandOptions>[] = [
  { long: '--filter', short: '-f', value: 'PATTERN', help: 'run the tests whose name contains PATTERN (repeatable: any matches; BINARY::NAME too)', apply: (o, v) => o.filters.push(v!) },
  { long: '--skip', short: '-s', value: 'PATTERN', help: 'leave out the tests whose name contains PATTERN (repeatable)', apply: (o, v) => o.skips.push(v!) },
  { long: '--exact', short: '-e', help: 'filters and --skip match whole names', apply: (o) => (o.exact = true) },
  { long: '--list', short: '-l', help: 'list the tests instead of running them (with --reporter json: as JSON)', apply: (o) => (o.list = true) },
  { long: '--include-ignored', help: 'also run tests marked .ignore', apply: (o) => (o.includeIgnored = true) },
  { long: '--timeout', short: '-t', value: 'MS', help: 'timeout for tests that set none (default 10000)', apply: (o, v, n) => (o.timeoutMs = positiveInteger(n, v!)) },
  {
    long: '--max-guest-memory',
    value: 'SIZE',
    help: "most guest memory (RAM ranges and image) a test's machine may have, such as 64G or 1T (default 16G)",
    apply: (o, v, n) => (o.maxGuestMemory = byteSize(n, v!)),
  },
  { long: '--reporter', short: '-r', value: 'NAME', help: 'pretty (default), tap, json or junit', apply: (o, v, n) => (o.reporter = oneOf(n, v!, REPORTER_NAMES)) },
  { long: '--output', short: '-o', value: 'FILE', help: 'write the report to FILE instead of standard output', apply: (o, v) => (o.output = v!) },
  { long: '--show-output', aliases: ['--nocapture'], help: "also show passing tests' output (pretty)", apply: (o) => (o.showOutput = true) },
  { long: '--quiet', short: '-q', help: 'one character per test instead of one line (pretty)', apply: (o) => (o.quiet = true) },
  { long: '--color', value: 'WHEN', help: 'auto (default: a terminal, unless NO_COLOR), always or never; FORCE_COLOR forces it', apply: (o, v, n) => (o.color = oneOf<ColorChoice>(n, v!, COLOR_CHOICES)) },
  {
    long: '--jobs',
    short: '-j',
    aliases: ['--test-threads'],
    value: 'N',
    help: 'worker processes (default: the number of CPUs; at most 4 per CPU and one per 256 MiB of memory)',
    apply: (o, v, n) => {
      const jobs = positiveInteger(n, v!);
      const limit = jobLimit();
      if (jobs > limit.max) throw new UsageError(`${n} must be at most ${limit.max} on this host: ${limit.reason} (got "${jobs}")`);
      o.jobs = jobs;
    },
  },
  {
    long: '--isolation',
    value: 'MODE',
    help: 'snapshot (default: reuse a VM, restore it between tests) or vm (a fresh VM for every test)',
    apply: (o, v, n) => (o.isolation = oneOf<Isolation>(n, v!, ISOLATION_MODES)),
  },
  {
    long: '--shard',
    value: 'I/N',
    help: `run only the I-th of N slices of the tests (1 <= I <= N <= ${MAX_SHARDS})`,
    apply: (o, v, n) => {
      const match = /^(\d+)\/(\d+)$/.exec(v!);
      const index = Number(match?.[1]);
      const count = Number(match?.[2]);
      if (!match || count < 1 || index < 1 || index > count || count > MAX_SHARDS) {
        throw new UsageError(`${n} must be I/N with 1 <= I <= N <= ${MAX_SHARDS}, such as 1/4 (got "${v}")`);
      }
      o.shard = { index, count };
    },
  },
  {
    long: '--bail',
    value: 'N',
    optionalValue: /^\d+$/,
    help: 'stop after N failures (default 1)',
    apply: (o, v, n) => (o.bail = v === undefined ? 1 : positiveInteger(n, v)),
  },
];

const RUN_USAGE = `usage: kvmtest run [options] [TESTS.elf | FILE.kvmtest.ts | DIR]... [FILTER...]

Runs the tests of test binaries (built with \`kvmtest cc\`) and test files
(NAME.kvmtest.ts, .mts, .js or .mjs). A directory is searched for both
(skipping node_modules and hidden directories); with none named, the
current directory is. An argument that names an existing file or directory
is an input; any other is a filter, as --filter PATTERN: \`kvmtest run
tests.elf inw\` runs the tests whose name contains "inw". BINARY::NAME, as
failure lists print it, selects in that binary (or file) only.

options:
${renderOptions(RUN_OPTIONS)}
  -h, --help                  this help

${EXIT_STATUSES}`;

const CC_USAGE = `usage: kvmtest cc [--higher-half] [--allow-simd] [compiler args...] -o TESTS.elf SOURCES...
       kvmtest cc -shared [compiler args...] -o TESTS.so SOURCES...
       kvmtest cc -c [compiler args...] -o FILE.o SOURCE
       kvmtest cc --print-include-dir | --print-cflags

Compiles and links C (.c) and assembly (.S) test sources with the kvmtest SDK,
with $CC (or cc): gcc and clang work. Arguments it does not know go to the
compiler, after its own flags.

options:
      --higher-half     link at 0xffffffff80000000 and compile with -mcmodel=kernel
      --allow-simd      let your code use SSE/AVX/x87 (never the runtime)
      -shared           a shared object whose tests run in mirror mode (kvmtest
                        run TESTS.so loads it into the worker)
      --print-include-dir
                        print the directory that holds kvmtest.h
      --print-cflags    print the flags kvmtest cc compiles test sources with
  -h, --help            this help

exit status: 0 built, 1 the compiler failed, 2 kvmtest cc could not start`;

const DOCTOR_USAGE = `usage: kvmtest doctor

Says whether /dev/kvm is usable, what kind of KVM this is, where the guest's
CPUID differs from KVM's table, and which groups of instructions a guest can
run here, each probed with a one-instruction guest.

exit status: 0 /dev/kvm is usable, 2 it is not`;

const COMMANDS = ['cc', 'run', 'doctor', 'help'] as const;
const HELP: Record<string, string> = { run: RUN_USAGE, cc: CC_USAGE, doctor: DOCTOR_USAGE };

const wantsHelp = (args: readonly string[]) => args.length === 1 && (args[0] === '--help' || args[0] === '-h');

/** Runs the command line; resolves to the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    const [command, ...rest] = argv;
    switch (command) {
      case undefined:
        // No command is a mistake: the usage goes to stderr.
        process.stderr.write(`${OVERVIEW}\n`);
        return EXIT_USAGE;
      case '--help':
      case '-h':
        process.stdout.write(`${OVERVIEW}\n`);
        return EXIT_OK;
      case 'help': {
        const topic = rest[0];
        if (topic === undefined) process.stdout.write(`${OVERVIEW}\n`);
        else if (HELP[topic]) process.stdout.write(`${HELP[topic]}\n`);
        else throw new UsageError(`no help for "${topic}"; the commands are cc, run and doctor${commandSuggestion(topic)}`);
        return EXIT_OK;
      }
      case '--version':
      case '-V':
        process.stdout.write(`kvmtest ${packageVersion()}\n`);
        return EXIT_OK;
      case 'run':
        if (rest.some((a) => a === '--help' || a === '-h')) return printHelp('run');
        return await runCommand(parseRunArgs(rest));
      case 'cc':
        if (wantsHelp(rest)) return printHelp('cc');
        return await ccCommand(rest);
      case 'doctor':
        if (wantsHelp(rest)) return printHelp('doctor');
        if (rest.length > 0) throw new UsageError(`doctor takes no arguments (got ${rest.join(' ')})`);
        return await doctorCommand();
      default:
        throw new UsageError(`unknown command "${command}"; the commands are cc, run and doctor${commandSuggestion(command)}`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      const command = argv[0] && HELP[argv[0]] ? ` ${argv[0]}` : '';
      process.stderr.write(`kvmtest: ${err.message}\nRun \`kvmtest${command} --help\` for usage.\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
}

function printHelp(command: string): number {
  process.stdout.write(`${HELP[command]}\n`);
  return EXIT_OK;
}

function commandSuggestion(word: string): string {
  const near = closest(word, COMMANDS);
  return near ? `; did you mean ${near}?` : '';
}

/**
 * Whether a positional argument of `kvmtest run` names tests to run (a test
 * binary, a test file, a directory): an existing path, or something that
 * looks like one (so that a mistyped binary is reported as a missing file,
 * not taken as a filter).
 */
function isBinaryArgument(arg: string): boolean {
  if (existsSync(arg)) return true;
  if (arg.includes('::')) return false; // BINARY::NAME, a filter
  return arg.includes('/') || /\.(elf|so|o)$/.test(arg) || TEST_FILE.test(arg);
}

/** Parses `kvmtest run` arguments; throws UsageError for anything wrong. */
export function parseRunArgs(args: readonly string[]): RunCommandOptions {
  const options = runDefaults();
  parseOptions(args, RUN_OPTIONS, options, (arg) => {
    if (isBinaryArgument(arg)) options.binaries.push(arg);
    else options.filters.push(arg);
  });
  return options;
}

const SIZE_UNITS: Record<string, number> = { '': 0, K: 10, M: 20, G: 30, T: 40, P: 50 };

/** "64G", "1T", "512MiB", "1073741824": bytes, at least 1 MiB. */
function byteSize(name: string, text: string): bigint {
  const match = /^(\d+)\s*([KMGTP]?)(?:i?B)?$/i.exec(text.trim());
  if (!match) throw new UsageError(`${name} must be a size such as 64G, 1T or 512M (got "${text}")`);
  const bytes = BigInt(match[1]!) << BigInt(SIZE_UNITS[match[2]!.toUpperCase()]!);
  if (bytes < 1n << 20n) throw new UsageError(`${name} must be at least 1M, what the engine itself takes (got "${text}")`);
  return bytes;
}

function positiveInteger(name: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`${name} must be a positive whole number (got "${text}")`);
  }
  return n;
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
