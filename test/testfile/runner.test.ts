// kvmtest run on test files: describe's "group > test" names in every
// reporter, skip and only, --list, filters and FILE::NAME, the worker
// options (--isolation, --jobs), the build cache (a second run compiles
// nothing; a file's snippets compile side by side into one ELF), a
// JavaScript file, and finding test files in a directory.
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { parseElf } from '../../src/image/elf.js';
import type { JsonTest } from '../../src/report/json.js';
import { CAN_BUILD, describeRun, lines, tempDir } from '../cli/helpers.js';
import { guestTest } from '../helpers/kvm.js';
import { parseXml } from '../report/xml.js';
import { assertPassed, failureOf, FIXTURES, fixture, freshCache, lineOf, resultOf, runJsonFile, runKvmtest } from './helpers.js';

const FILE = fixture('runner.kvmtest.ts');
const ONLY = fixture('only.kvmtest.ts');
const PLAIN = fixture('plain.kvmtest.mjs');
const SUMMARY = /^test result: FAILED\. 3 passed; 1 failed; 4 ignored; 0 measured; 0 filtered out; finished in \d+\.\d\ds$/;

/** runner.kvmtest.ts's tests, in its order, with their status in a full run. */
const STATUSES: Array<[string, string]> = [
  ['top level', 'passed'],
  ['group > inner', 'passed'],
  ['group > nested > deep', 'passed'],
  ['group > fails', 'failed'],
  ['group > skipped inside', 'ignored'],
  ['skipped', 'ignored'],
  ['skipped with a reason', 'ignored'],
  ['skipped group > in a skipped group', 'ignored'],
];

const statuses = (tests: readonly JsonTest[]) => tests.map((t): [string, string] => [t.name, t.status]);

describe('kvmtest run on test files: reporters, skip, only, --list', () => {
  test('pretty: "group > test" names, "ignored, REASON" for a skip with a reason, the failure, exit status 1', guestTest(), async () => {
    const result = await runKvmtest(['run', FILE]);
    assert.equal(result.status, 1, describeRun(result));
    const out = lines(result.stdout);
    assert.deepEqual(out.slice(0, 10), [
      'running 8 tests',
      'test top level ... ok',
      'test group > inner ... ok',
      'test group > nested > deep ... ok',
      'test group > fails ... FAILED',
      'test group > skipped inside ... ignored',
      'test skipped ... ignored',
      'test skipped with a reason ... ignored, needs a real APIC',
      'test skipped group > in a skipped group ... ignored',
      '',
    ]);
    assert.ok(result.stdout.includes('\n---- group > fails stdout ----\nexpected the test to halt'), result.stdout);
    assert.ok(result.stdout.includes('\nfailures:\n    group > fails\n'), result.stdout);
    assert.match(out.at(-1)!, SUMMARY);
  });

  test('tap: the same names and skip reasons', guestTest(), async () => {
    const result = await runKvmtest(['run', '--reporter', 'tap', FILE]);
    assert.equal(result.status, 1, describeRun(result));
    const points = lines(result.stdout).filter((line) => /^(not )?ok /.test(line));
    assert.deepEqual(points, [
      'ok 1 - top level',
      'ok 2 - group > inner',
      'ok 3 - group > nested > deep',
      'not ok 4 - group > fails',
      'ok 5 - group > skipped inside # SKIP',
      'ok 6 - skipped # SKIP',
      'ok 7 - skipped with a reason # SKIP needs a real APIC',
      'ok 8 - skipped group > in a skipped group # SKIP',
    ]);
  });

  test('junit: one suite for the file, testcases named "group > test", the failure and the skips', guestTest(), async () => {
    const result = await runKvmtest(['run', '--reporter', 'junit', FILE]);
    assert.equal(result.status, 1, describeRun(result));
    const suite = parseXml(result.stdout).children[0]!;
    assert.deepEqual([suite.attributes['name'], suite.attributes['tests'], suite.attributes['failures'], suite.attributes['skipped']], [FILE, '8', '1', '4']);
    const cases = suite.children.map((t) => [t.attributes['name'], t.children.map((child) => child.name).join(',')]);
    assert.deepEqual(cases, STATUSES.map(([name, status]) => [name, status === 'failed' ? 'failure' : status === 'ignored' ? 'skipped' : '']));
    const reasoned = suite.children.find((t) => t.attributes['name'] === 'skipped with a reason')!;
    assert.equal(reasoned.children[0]!.attributes['message'], 'needs a real APIC');
  });

  test('json: names, lines where each test is declared, statuses', guestTest(), async () => {
    const { result, report, byName } = await runJsonFile([FILE]);
    assert.equal(result.status, 1, describeRun(result));
    assert.deepEqual(statuses(report.tests), STATUSES);
    const declared = ["kvmtest('top level'", "kvmtest('inner'", "kvmtest('deep'", "kvmtest('fails'", "kvmtest.skip('skipped inside'", "kvmtest('skipped',", "kvmtest('skipped with a reason'", "kvmtest('in a skipped group'"];
    assert.deepEqual(report.tests.map((t) => t.line), declared.map((text) => lineOf('runner.kvmtest.ts', text)));
    assert.ok(report.tests.every((t) => t.binary === FILE && t.file === FILE));
    assert.equal(resultOf(byName, 'skipped with a reason').message, 'needs a real APIC');
  });

  test('--list: every test by its full name, pretty and as JSON (ignored ones marked), nothing run', guestTest(), async () => {
    const pretty = await runKvmtest(['run', '--list', FILE]);
    assert.equal(pretty.status, 0, describeRun(pretty));
    assert.deepEqual(lines(pretty.stdout), [...STATUSES.map(([name, status]) => `${name}: test${status === 'ignored' ? ' (ignored)' : ''}`), '', '8 tests']);
    const json = await runKvmtest(['run', '--list', '--reporter', 'json', FILE]);
    assert.equal(json.status, 0, describeRun(json));
    const listed = JSON.parse(json.stdout) as { tests: Array<{ name: string; line: number; ignored: boolean }>; count: number };
    assert.deepEqual(listed.tests.map((t) => [t.name, t.ignored]), STATUSES.map(([name, status]) => [name, status === 'ignored']));
    assert.equal(listed.count, 8);
  });

  test('only: the file\'s other tests are ignored with the reason; skip still applies', guestTest(), async () => {
    const { result, report } = await runJsonFile([ONLY]);
    assert.equal(result.status, 0, describeRun(result));
    assert.deepEqual(report.tests.map((t) => [t.name, t.status, t.message]), [
      ['not chosen', 'ignored', 'another test in this file is marked only'],
      ['chosen', 'passed', null],
      ['chosen by its options', 'passed', null],
      ['chosen group > member', 'passed', null],
      ['skipped anyway', 'ignored', 'not today'],
    ]);
  });

  test('only under CI: each test marked only fails with the reason, the others run; exit status 1', guestTest(), async () => {
    const { result, byName } = await runJsonFile([ONLY], { env: { CI: '1' } });
    assert.equal(result.status, 1, describeRun(result));
    assertPassed(byName, 'not chosen');
    for (const name of ['chosen', 'chosen by its options', 'chosen group > member']) {
      assert.equal(failureOf(byName, name), 'only is refused when CI is set: it would leave the rest of the file untested there without a word; remove it');
    }
    assert.equal(resultOf(byName, 'skipped anyway').status, 'ignored');
  });
});

/** `kvmtest run --list --reporter json ARGS...`: the names selected, and how many were filtered out. */
async function listed(args: readonly string[]): Promise<{ names: string[]; filteredOut: number }> {
  const result = await runKvmtest(['run', '--list', '--reporter', 'json', ...args]);
  assert.equal(result.status, 0, describeRun(result));
  const list = JSON.parse(result.stdout) as { tests: Array<{ name: string }>; filteredOut: number };
  return { names: list.tests.map((t) => t.name), filteredOut: list.filteredOut };
}

describe('kvmtest run on test files: filters (listed, as they select for a run)', () => {
  test('a positional filter matches part of "group > test" names; the others are filtered out', guestTest(), async () => {
    assert.deepEqual(await listed([FILE, 'nested']), { names: ['group > nested > deep'], filteredOut: 7 });
  });

  test('FILE::NAME, as failure lists print it, selects in that file; --exact matches whole names', guestTest(), async () => {
    const selected = await listed(['--exact', FILE, PLAIN, `${FILE}::group > inner`, `${PLAIN}::javascript: bytes and a check`, 'group']);
    assert.deepEqual(selected.names, ['group > inner', 'javascript: bytes and a check']);
  });

  test('--skip leaves out what it matches; a filter that matches nothing is exit status 3', guestTest(), async () => {
    assert.deepEqual((await listed([FILE, '--skip', 'group', '--skip', 'skipped'])).names, ['top level']);
    const none = await runKvmtest(['run', FILE, 'no such test']);
    assert.equal(none.status, 3, describeRun(none));
    assert.match(none.stderr, /no test matches "no such test"/);
  });
});

describe('kvmtest run on test files: workers', () => {
  // The runs above use the default (snapshot, a worker per CPU); isolation.test.ts runs --jobs 1 in both modes.
  test('--isolation vm --jobs 2: the same results as the default run', guestTest(), async () => {
    const { result, report } = await runJsonFile(['--isolation', 'vm', '--jobs', '2', FILE]);
    assert.equal(result.status, 1, describeRun(result));
    assert.deepEqual(statuses(report.tests), STATUSES);
  });
});

/**
 * A $CC that logs each call (compile, link, the runtime's build, version
 * queries) and runs cc. A snippet's compile waits, a few seconds at most,
 * for a second one to start, and logs how many had started: two means they
 * ran side by side.
 */
function loggingCompiler(dir: string): { cc: string; log: string } {
  const log = join(dir, 'cc.log');
  const cc = join(dir, 'logging-cc');
  writeFileSync(cc, [
    '#!/bin/sh',
    `log='${log}'`,
    'case " $* " in',
    '  " --version ") echo version >> "$log" ;;',
    '  *" -x c "* | *" -x assembler "*)',
    '    touch "$log.started.$$"',
    '    tries=0',
    '    while [ "$(ls "$log".started.* | wc -l)" -lt 2 ] && [ "$tries" -lt 100 ]; do sleep 0.05; tries=$((tries + 1)); done',
    '    case " $* " in *" -x c "*) language=c ;; *) language=assembler ;; esac',
    '    echo "compile $language, $(ls "$log".started.* | wc -l) started" >> "$log" ;;',
    '  *" -c "*) echo runtime >> "$log" ;;',
    '  *) echo link >> "$log" ;;',
    'esac',
    'exec cc "$@"',
    '',
  ].join('\n'));
  chmodSync(cc, 0o755);
  return { cc, log };
}

describe('kvmtest run on test files: the build cache', () => {
  const cache = freshCache();
  const runs: string[][] = [];

  before(async () => {
    if (!CAN_BUILD) return;
    const dir = join(tempDir(), 'logging-cc');
    mkdirSync(dir);
    const { cc, log } = loggingCompiler(dir);
    for (let i = 0; i < 2; i++) {
      writeFileSync(log, '');
      const { result, report } = await runJsonFile([FILE], { cache, env: { CC: cc } });
      assert.equal(result.status, 1, describeRun(result));
      assert.deepEqual(statuses(report.tests), STATUSES);
      runs.push(lines(readFileSync(log, 'utf8')));
    }
  });

  test('the first run builds the runtime and both snippets, then links them once', guestTest(), () => {
    const first = runs[0]!;
    assert.deepEqual(first.filter((l) => l !== 'version').map((l) => l.replace(/, \d started$/, '')).sort(), ['compile assembler', 'compile c', 'link', 'runtime']);
  });

  test('a second run of the unchanged file compiles and links nothing (it only asks the compiler its version)', guestTest(), () => {
    const second = runs[1]!;
    assert.ok(second.length > 0 && second.every((l) => l === 'version'), `the second run's compiler calls: ${second.join(', ')}`);
  });

  test('the snippets compile side by side', guestTest({ skip: availableParallelism() < 2 ? 'one CPU: snippets compile one after another' : false }), () => {
    const compiles = runs[0]!.filter((l) => l.startsWith('compile'));
    assert.deepEqual(compiles.map((l) => l.replace(/^.*, /, '')), ['2 started', '2 started']);
  });

  test('the cache holds one guest ELF for the file, with both snippets in it', guestTest(), () => {
    const elves = readdirSync(join(cache, 'guests')).filter((f) => f.endsWith('.elf'));
    assert.equal(elves.length, 1, elves.join(', '));
    const symbols = parseElf(readFileSync(join(cache, 'guests', elves[0]!)), elves[0]!).symbols.map((s) => s.name).filter((n) => /^kt_ts_[0-9a-f]{16}$/.test(n));
    assert.equal(new Set(symbols).size, 2, symbols.join(', '));
    assert.equal(readdirSync(join(cache, 'snippets')).filter((f) => f.endsWith('.o')).length, 2);
  });
});

describe('kvmtest run on test files: finding them, in TypeScript and JavaScript', () => {
  test('with no arguments, kvmtest run finds test files (TypeScript and JavaScript) in subdirectories, not in node_modules or hidden ones', guestTest(), async () => {
    const root = join(tempDir(), 'search');
    const refuse = "throw new Error('this file must not be found');\n";
    for (const dir of ['sub/deeper', 'node_modules/dep', '.hidden']) mkdirSync(join(root, dir), { recursive: true });
    writeFileSync(join(root, 'top.kvmtest.ts'), "import { kvmtest, bytes } from 'kvmtest';\nconst n: number = 1;\nkvmtest('typescript at the top', bytes([0xc3]), () => { if (n !== 1) throw new Error(); });\n");
    copyFileSync(join(FIXTURES, 'plain.kvmtest.mjs'), join(root, 'sub', 'deeper', 'plain.kvmtest.mjs'));
    writeFileSync(join(root, 'sub', 'helpers.ts'), refuse);
    writeFileSync(join(root, 'node_modules', 'dep', 'dep.kvmtest.ts'), refuse);
    writeFileSync(join(root, '.hidden', 'hidden.kvmtest.mjs'), refuse);
    const result = await runKvmtest(['run', '--reporter', 'json'], { cwd: root });
    assert.equal(result.status, 1, describeRun(result));
    const report = JSON.parse(result.stdout) as { tests: JsonTest[] };
    assert.deepEqual(report.tests.map((t) => [t.binary, t.name, t.status]), [
      ['sub/deeper/plain.kvmtest.mjs', 'javascript: c snippet', 'passed'],
      ['sub/deeper/plain.kvmtest.mjs', 'javascript: assertion names the .mjs line', 'failed'],
      ['sub/deeper/plain.kvmtest.mjs', 'javascript: bytes and a check', 'passed'],
      ['top.kvmtest.ts', 'typescript at the top', 'passed'],
    ]);
    // The .mjs file's c`` snippet is compiled with its lines there.
    assert.equal(report.tests[1]!.message, 'assertion failed at sub/deeper/plain.kvmtest.mjs:10: 0\n  message: from JavaScript');
  });
});
