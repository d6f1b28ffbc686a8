// Usage and environment errors exit with status 2 and a message that says
// what is wrong; --help, --version and the bare command.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { assemble } from '../helpers/toolchain.js';
import { guestTest, toolchainTest } from '../helpers/kvm.js';
import { BIN, buildFixtures, CAN_BUILD, describeRun, kvmtest, ROOT, runCommand, tempDir } from './helpers.js';

const POINTER = 'Run `kvmtest --help` for usage.';
const RUN_POINTER = 'Run `kvmtest run --help` for usage.';

/** Exit status 2, nothing on stdout, one "kvmtest: ..." message on stderr matching every pattern. */
async function assertUsageError(args: readonly string[], ...patterns: RegExp[]): Promise<string> {
  return assertUsageErrorIn({}, args, ...patterns);
}

async function assertUsageErrorIn(options: { cwd?: string }, args: readonly string[], ...patterns: RegExp[]): Promise<string> {
  const result = await kvmtest(args, options);
  assert.equal(result.status, 2, `kvmtest ${args.join(' ')}: ${describeRun(result)}`);
  assert.equal(result.stdout, '', `kvmtest ${args.join(' ')} writes nothing to stdout`);
  assert.match(result.stderr, /^kvmtest: /);
  assert.ok(!result.stderr.includes('internal error'), result.stderr);
  for (const pattern of patterns) assert.match(result.stderr, pattern, `kvmtest ${args.join(' ')}`);
  return result.stderr;
}

describe('the command line', () => {
  test('--help: exit status 0, the commands and how to get each one\'s help', async () => {
    const result = await kvmtest(['--help']);
    assert.equal(result.status, 0, describeRun(result));
    assert.equal(result.stderr, '');
    for (const command of ['kvmtest cc', 'kvmtest run', 'kvmtest doctor', 'kvmtest help COMMAND']) assert.ok(result.stdout.includes(command), command);
  });

  test('run --help, help run, and -h: the run options and the exit statuses, exit status 0', async () => {
    const [long, word, short] = await Promise.all([kvmtest(['run', '--help']), kvmtest(['help', 'run']), kvmtest(['run', '-h'])]);
    for (const result of [long, word, short]) {
      assert.equal(result.status, 0, describeRun(result));
      assert.equal(result.stderr, '');
      assert.equal(result.stdout, long.stdout);
    }
    for (const option of [
      '--filter PATTERN',
      '--exact',
      '--list',
      '--include-ignored',
      '--timeout MS',
      '--reporter NAME',
      '--output FILE',
      '--jobs N',
      '--isolation MODE',
      '--shard I/N',
      '--bail [N]',
      '--skip PATTERN',
      '--show-output',
      '--nocapture',
      '--quiet',
      '--color WHEN',
      '--test-threads',
      '--max-guest-memory SIZE',
    ]) {
      assert.ok(long.stdout.includes(option), `run --help mentions ${option}`);
    }
    for (const short of ['-f, --filter', '-s, --skip', '-j, --jobs', '-q, --quiet', '-o, --output', '-r, --reporter', '-l, --list']) {
      assert.ok(long.stdout.includes(short), `run --help mentions ${short}`);
    }
    assert.match(long.stdout, /exit status: 0 all tests passed, 1 some failed, 2 usage or environment error\n\(also a run that had to stop early\), 3 filters matched no test/);
  });

  test('cc --help and doctor --help: their usage, exit status 0', async () => {
    const cc = await kvmtest(['cc', '--help']);
    assert.equal(cc.status, 0, describeRun(cc));
    assert.match(cc.stdout, /^usage: kvmtest cc \[--higher-half\] \[--allow-simd\]/);
    assert.match(cc.stdout, /--print-include-dir/);
    const doctor = await kvmtest(['doctor', '--help']);
    assert.equal(doctor.status, 0, describeRun(doctor));
    assert.match(doctor.stdout, /^usage: kvmtest doctor\n/);
    const help = await kvmtest(['help', 'doctor']);
    assert.equal(help.stdout, doctor.stdout);
  });

  test('a mistyped command or option names the nearest known one', async () => {
    await assertUsageError(['rnu', 'x.elf'], /unknown command "rnu"; the commands are cc, run and doctor; did you mean run\?/);
    await assertUsageError(['run', '--fitler', 'x', 'x.elf'], /unknown option --fitler; did you mean --filter\?/);
    await assertUsageError(['run', '--show-outptu', 'x.elf'], /did you mean --show-output\?/);
    await assertUsageError(['run', '--reporter', 'jsn', 'x.elf'], /--reporter must be pretty, tap, json or junit \(got "jsn"\); did you mean json\?/);
    const far = await assertUsageError(['run', '--frobnicate', 'x.elf'], /unknown option --frobnicate/);
    assert.doesNotMatch(far, /did you mean/);
  });

  test("--version: the package's version", async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const result = await kvmtest(['--version']);
    assert.equal(result.status, 0, describeRun(result));
    assert.equal(result.stdout, `kvmtest ${pkg.version}\n`);
  });

  test('no arguments: the usage, exit status 2', async () => {
    const [bare, help] = await Promise.all([kvmtest([]), kvmtest(['--help'])]);
    assert.equal(bare.status, 2, describeRun(bare));
    assert.equal(bare.stdout + bare.stderr, help.stdout, 'the same usage text as --help');
  });

  test('an unknown command: exit status 2, the commands named', async () => {
    const stderr = await assertUsageError(['frobnicate'], /unknown command "frobnicate"/, /cc, run and doctor/);
    assert.ok(stderr.includes(POINTER));
  });

  test('doctor takes no arguments', async () => {
    await assertUsageError(['doctor', 'extra'], /doctor takes no arguments/);
  });
});

describe('kvmtest run: usage errors (exit status 2, nothing run)', () => {
  // The binary need not exist: arguments are checked first.
  const elf = join(tempDir(), 'never-read.elf');

  const cases: Array<[string, string[], RegExp[]]> = [
    ['an unknown option', ['--frob'], [/unknown option --frob/]],
    ['an unknown short option', ['-x'], [/unknown option -x/]],
    ['--jobs 0', ['--jobs', '0'], [/--jobs must be a positive whole number/, /"0"/]],
    ['--jobs x', ['--jobs', 'x'], [/--jobs must be a positive whole number/, /"x"/]],
    [
      '--jobs beyond what this host can run',
      ['--jobs', '300'],
      [/--jobs must be at most \d+ on this host: 4 worker processes per CPU \(\d+ CPUs?: \d+\) and 256 MiB of memory for each \([\d.]+ GiB: \d+\), whichever is fewer/, /"300"/],
    ],
    ['--timeout -1', ['--timeout', '-1'], [/--timeout must be a positive whole number/, /"-1"/]],
    ['--reporter xml', ['--reporter', 'xml'], [/--reporter must be pretty, tap, json or junit/, /"xml"/]],
    ['--isolation foo', ['--isolation', 'foo'], [/--isolation must be snapshot or vm/, /"foo"/]],
    ['--shard 0/2', ['--shard', '0/2'], [/--shard must be I\/N with 1 <= I <= N/, /"0\/2"/]],
    ['--shard 3/2', ['--shard', '3/2'], [/--shard must be I\/N with 1 <= I <= N/, /"3\/2"/]],
    ['--shard x', ['--shard', 'x'], [/--shard must be I\/N/, /"x"/]],
    ['--shard with a huge N', ['--shard', '1/99999999999999999999'], [/--shard must be I\/N with 1 <= I <= N <= 1000000/, /"1\/99999999999999999999"/]],
    ['--shard 1/1000001', ['--shard', '1/1000001'], [/--shard must be I\/N with 1 <= I <= N <= 1000000/]],
    ['--bail 0', ['--bail=0'], [/--bail must be a positive whole number/]],
    ['--max-guest-memory lots', ['--max-guest-memory', 'lots'], [/--max-guest-memory must be a size such as 64G, 1T or 512M/, /"lots"/]],
    ['--max-guest-memory 4K', ['--max-guest-memory', '4K'], [/--max-guest-memory must be at least 1M/]],
    ['a value for a flag', ['--list=yes'], [/--list takes no value/]],
  ];
  for (const [what, args, patterns] of cases) {
    test(what, async () => {
      const stderr = await assertUsageError(['run', ...args, elf], ...patterns);
      assert.ok(stderr.includes(RUN_POINTER), stderr);
    });
  }

  test('an option without its value', async () => {
    await assertUsageError(['run', elf, '--timeout'], /--timeout needs a value/);
    await assertUsageError(['run', '--filter', '--exact', elf], /--filter needs a value/);
  });

  test('nothing named, and nothing to run under the current directory', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'kvmtest-empty-'));
    try {
      mkdirSync(join(empty, 'node_modules', 'dep'), { recursive: true });
      writeFileSync(join(empty, 'node_modules', 'dep', 'skipped.kvmtest.mjs'), '');
      const stderr = await assertUsageErrorIn({ cwd: empty }, ['run'], /no tests found under the current directory/, /NAME\.kvmtest\.ts/, /kvmtest cc/, /skipping node_modules/);
      assert.ok(!stderr.includes(RUN_POINTER), 'not a usage mistake: no pointer to --help');
      await assertUsageErrorIn({ cwd: empty }, ['run', '--filter', 'x'], /no tests found under the current directory/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('kvmtest run: unusable binaries and outputs (exit status 2)', () => {
  const bin = { passing: '', noTests: '', duplicate: '' };
  let notElf = '';
  let elf32 = '';

  before(async () => {
    notElf = join(tempDir(), 'not-an-elf.elf');
    writeFileSync(notElf, 'hello, I am text\n');
    if (!CAN_BUILD) return;
    Object.assign(
      bin,
      await buildFixtures({
        passing: ['passing.c'],
        noTests: ['no-tests.c'],
        duplicate: ['duplicate-a.c', 'duplicate-b.c'],
      }),
    );
    // A 32-bit static ELF: kvmtest cc only builds 64-bit ones.
    elf32 = assemble('.globl _start\n_start: ret\n', { name: 'i386', extraAsArgs: ['--32'], extraLdArgs: ['-m', 'elf_i386'] });
  });

  // List and run read binaries the same way; --list needs no KVM, so these run anywhere.
  for (const mode of [['--list'], []]) {
    const options = mode.length > 0 ? toolchainTest : guestTest;
    const how = mode.length > 0 ? 'run --list' : 'run';
    test(`${how}: a missing file`, options(), async () => {
      await assertUsageError(['run', ...mode, join(tempDir(), 'missing.elf')], /cannot read test binary .*missing\.elf: no such file/);
    });
    test(`${how}: a directory with no tests in it`, options(), async () => {
      const empty = mkdtempSync(join(tmpdir(), 'kvmtest-empty-'));
      try {
        writeFileSync(join(empty, 'notes.txt'), 'no tests here\n');
        await assertUsageError(['run', ...mode, empty], /no tests found under \/.*kvmtest-empty-/);
      } finally {
        rmSync(empty, { recursive: true, force: true });
      }
    });
    test(`${how}: a file that is not ELF`, options(), async () => {
      await assertUsageError(['run', ...mode, notElf], /not-an-elf\.elf: not an ELF file/);
    });
    test(`${how}: a 32-bit ELF`, options(), async () => {
      await assertUsageError(['run', ...mode, elf32], /32-bit ELF/, /64-bit/);
    });
    test(`${how}: a static ELF without tests`, options(), async () => {
      await assertUsageError(['run', ...mode, bin.noTests], /noTests\.elf has no kvmtest tests/, /KVMTEST\(name\)/);
    });
    test(`${how}: one test name declared twice in a binary`, options(), async () => {
      await assertUsageError(
        ['run', ...mode, bin.duplicate],
        /the test name "same" is given twice/,
        /duplicate-a\.c:\d+/,
        /duplicate-b\.c:\d+/,
        /unique/,
      );
    });
    test(`${how}: a bad binary among good ones stops the run before any test`, options(), async () => {
      await assertUsageError(['run', ...mode, bin.passing, notElf], /not an ELF file/);
    });
  }

  test('--output into a missing directory', guestTest(), async () => {
    const file = join(tempDir(), 'no-such-directory', 'report.txt');
    await assertUsageError(['run', '--output', file, bin.passing], /cannot write the report to .*no-such-directory\/report\.txt/, /no such file or directory/i);
  });

  /** Exit status 2 and exactly `message` on stderr, with each of `reporters`. */
  async function assertCannotWrite(output: string, message: string, reporters = ['pretty']): Promise<void> {
    for (const reporter of reporters) {
      const result = await kvmtest(['run', '--reporter', reporter, '--output', output, bin.passing]);
      assert.equal(result.status, 2, `--reporter ${reporter}: ${describeRun(result)}`);
      assert.equal(result.stderr, `kvmtest: cannot write the report to ${output}: ${message}\n`, `--reporter ${reporter}`);
      assert.equal(result.stdout, '');
    }
  }

  test('--output /dev/full: the device takes no report, whether a reporter writes as it goes or at the end', guestTest(), async () => {
    await assertCannotWrite('/dev/full', 'ENOSPC: no space left on device', ['pretty', 'tap', 'json', 'junit']);
  });

  test('standard output on /dev/full: one line on stderr and exit status 2, not a stack trace', guestTest(), async () => {
    for (const reporter of ['pretty', 'json']) {
      const result = await runCommand('sh', ['-c', `exec "$0" "$1" run --reporter ${reporter} "$2" > /dev/full`, process.execPath, BIN, bin.passing]);
      assert.equal(result.status, 2, `--reporter ${reporter}: ${describeRun(result)}`);
      assert.equal(result.stderr, 'kvmtest: cannot write the report to standard output: ENOSPC: no space left on device\n', `--reporter ${reporter}`);
    }
  });

  // These two are found before the run starts, whatever the reporter.
  test('--output a directory', guestTest(), async () => {
    const dir = join(tempDir(), 'a-directory');
    mkdirSync(dir, { recursive: true });
    await assertCannotWrite(dir, 'it is a directory');
    assert.deepEqual(readdirSync(dir), [], 'nothing written into it');
  });

  test('--output in a directory that cannot be written to', guestTest(), async () => {
    if (process.getuid?.() === 0) {
      // root may write to any directory it owns, but not to sysfs.
      await assertCannotWrite('/sys/kvmtest-report.json', 'EACCES: permission denied');
      return;
    }
    const dir = join(tempDir(), 'read-only');
    mkdirSync(dir, { recursive: true, mode: 0o555 });
    await assertCannotWrite(join(dir, 'report.json'), 'EACCES: permission denied');
  });
});
