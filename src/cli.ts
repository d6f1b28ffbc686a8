// The kvmtest command line: parses arguments, then hands over to a command.
// Exit status: 0 all passed, 1 a test failed, 2 a usage or environment error,
// 128 + the signal's number when SIGINT or SIGTERM interrupted a run.
import { readFileSync } from 'node:fs';
import { ccCommand } from './commands/cc.js';
import { doctorCommand } from './commands/doctor.js';
import { runCommand, type RunCommandOptions } from './commands/run.js';
import { ISOLATION_MODES, type Isolation } from './runner/executor.js';
import { jobLimit, MAX_SHARDS } from './runner/limits.js';
import { REPORTER_NAMES } from './report/index.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A mistake in the command line: printed with a pointer to --help, exit status 2. */
export class UsageError extends Error {}

const USAGE = `kvmtest: unit tests for x86-64 ring-0 code, each in its own tiny KVM virtual machine

usage:
  kvmtest cc [--higher-half] [--allow-simd] [compiler args...] -o TESTS.elf SOURCES...
      compile and link C and assembly test sources with the kvmtest SDK
  kvmtest run [options] TESTS.elf...
      run every test in the given test binaries
  kvmtest doctor
      say what this host's KVM can do
  kvmtest --help | --version

run options:
  --filter PATTERN     run tests whose name contains PATTERN (repeatable: any matches)
  --exact              filters must match whole names
  --list               list the tests instead of running them
  --include-ignored    also run tests marked .ignore
  --timeout MS         timeout for tests that set none (default 10000)
  --max-guest-memory SIZE
                       most guest memory (RAM ranges and image) a test's machine
                       may have, such as 64G or 1T (default 16G)
  --reporter NAME      pretty (default), tap, json or junit
  --output FILE        write the report to FILE instead of standard output
  --jobs N             worker processes (default: the number of CPUs; at most
                       4 per CPU and one per 256 MiB of memory)
  --isolation MODE     snapshot (default: reuse a VM, restore it between tests)
                       or vm (a fresh VM for every test)
  --shard I/N          run only the I-th of N slices of the tests (1 <= I <= N <= 1000000)
  --bail [N]           stop after N failures (default 1)

exit status: 0 all tests passed, 1 some failed, 2 usage or environment error
(also a run that had to stop early), 130 or 143 after SIGINT or SIGTERM`;

/** Runs the command line; resolves to the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    const [command, ...rest] = argv;
    switch (command) {
      case undefined:
        // No command is a mistake: the usage goes to stderr.
        process.stderr.write(`${USAGE}\n`);
        return EXIT_USAGE;
      case '--help':
      case '-h':
      case 'help':
        process.stdout.write(`${USAGE}\n`);
        return EXIT_OK;
      case '--version':
      case '-V':
        process.stdout.write(`kvmtest ${packageVersion()}\n`);
        return EXIT_OK;
      case 'run':
        return await runCommand(parseRunArgs(rest));
      case 'cc':
        return await ccCommand(rest);
      case 'doctor':
        if (rest.length > 0) throw new UsageError(`doctor takes no arguments (got ${rest.join(' ')})`);
        return await doctorCommand();
      default:
        throw new UsageError(`unknown command "${command}"; the commands are cc, run and doctor`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`kvmtest: ${err.message}\nRun \`kvmtest --help\` for usage.\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
}

/** Parses `kvmtest run` arguments; throws UsageError for anything wrong. */
export function parseRunArgs(args: readonly string[]): RunCommandOptions {
  const options: RunCommandOptions = {
    binaries: [],
    filters: [],
    exact: false,
    list: false,
    includeIgnored: false,
    reporter: 'pretty',
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--') || arg === '--') {
      if (arg === '--') {
        options.binaries.push(...args.slice(i + 1));
        break;
      }
      if (arg.startsWith('-') && arg !== '-') throw new UsageError(`unknown option ${arg}`);
      options.binaries.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    const inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const next = args[i + 1];
      if (next === undefined || next.startsWith('--')) throw new UsageError(`${name} needs a value`);
      i++;
      return next;
    };
    const flag = () => {
      if (inline !== undefined) throw new UsageError(`${name} takes no value`);
    };
    switch (name) {
      case '--filter':
        options.filters.push(value());
        break;
      case '--exact':
        flag();
        options.exact = true;
        break;
      case '--list':
        flag();
        options.list = true;
        break;
      case '--include-ignored':
        flag();
        options.includeIgnored = true;
        break;
      case '--timeout':
        options.timeoutMs = positiveInteger(name, value());
        break;
      case '--max-guest-memory':
        options.maxGuestMemory = byteSize(name, value());
        break;
      case '--jobs': {
        const jobs = positiveInteger(name, value());
        const limit = jobLimit();
        if (jobs > limit.max) throw new UsageError(`--jobs must be at most ${limit.max} on this host: ${limit.reason} (got "${jobs}")`);
        options.jobs = jobs;
        break;
      }
      case '--reporter': {
        const reporter = value();
        if (!(REPORTER_NAMES as readonly string[]).includes(reporter)) {
          throw new UsageError(`--reporter must be one of ${REPORTER_NAMES.join(', ')} (got "${reporter}")`);
        }
        options.reporter = reporter as RunCommandOptions['reporter'];
        break;
      }
      case '--output':
        options.output = value();
        break;
      case '--isolation': {
        const mode = value();
        if (!(ISOLATION_MODES as readonly string[]).includes(mode)) {
          throw new UsageError(`--isolation must be ${ISOLATION_MODES.join(' or ')} (got "${mode}")`);
        }
        options.isolation = mode as Isolation;
        break;
      }
      case '--shard': {
        const text = value();
        const match = /^(\d+)\/(\d+)$/.exec(text);
        const index = Number(match?.[1]);
        const count = Number(match?.[2]);
        if (!match || count < 1 || index < 1 || index > count || count > MAX_SHARDS) {
          throw new UsageError(`--shard must be I/N with 1 <= I <= N <= ${MAX_SHARDS}, such as 1/4 (got "${text}")`);
        }
        options.shard = { index, count };
        break;
      }
      case '--bail': {
        // The count is optional: "--bail" alone, or "--bail 3", or "--bail=3".
        const next = inline ?? args[i + 1];
        if (inline !== undefined) options.bail = positiveInteger(name, inline);
        else if (next !== undefined && /^\d+$/.test(next)) {
          options.bail = positiveInteger(name, next);
          i++;
        } else options.bail = 1;
        break;
      }
      default:
        throw new UsageError(`unknown option ${name}`);
    }
  }
  if (options.binaries.length === 0) throw new UsageError('run needs at least one test binary (build one with `kvmtest cc`)');
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
