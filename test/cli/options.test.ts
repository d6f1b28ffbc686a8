// `kvmtest run` options: choosing tests (--filter, --exact, --list,
// --include-ignored, --shard), running them (--timeout, --jobs, --isolation,
// --bail) and reporting them (--reporter, --output), and a report order
// that does not depend on how the tests were scheduled.
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { parseXml, type XmlElement } from '../report/xml.js';
import { jobLimit } from '../../src/runner/limits.js';
import { schemaErrors, withXmllint } from '../helpers/consumers.js';
import { guestTest, toolchainTest } from '../helpers/kvm.js';
import { BIN, buildFixtures, CAN_BUILD, describeRun, kvmtest, lines, runCommand, runJson, tempDir, type JsonReport } from './helpers.js';

const bin = { passing: '', failing: '', many: '', spin: '' };

before(async () => {
  if (!CAN_BUILD) return;
  Object.assign(
    bin,
    await buildFixtures({ passing: ['passing.c'], failing: ['failing.c'], many: ['many.c'], spin: ['spin.c'] }),
  );
});

const names = (report: JsonReport) => report.tests.map((t) => t.name);
const HEX = /^0x[0-9a-f]+$/;

/** The JSON report's schema (src/report/json.ts): exact keys, in order, and their types. */
function assertJsonSchema(report: unknown): void {
  assert.ok(report !== null && typeof report === 'object');
  assert.deepEqual(Object.keys(report), ['tests', 'notRun', 'summary']);
  const { tests, notRun, summary } = report as JsonReport;
  assert.ok(Array.isArray(tests));
  for (const t of tests) {
    const keys = ['name', 'binary', 'file', 'line', 'status', 'outcome', 'durationMs', 'output', 'message'];
    assert.deepEqual(Object.keys(t), t.fault === undefined ? keys : [...keys, 'fault'], t.name);
    assert.equal(typeof t.name, 'string');
    assert.equal(typeof t.binary, 'string');
    // The fixtures are C files: each test is declared on a line of one.
    assert.match(t.file, /\.c$/, t.name);
    assert.ok(Number.isInteger(t.line) && t.line > 0, t.name);
    assert.ok(['passed', 'failed', 'ignored', 'skipped'].includes(t.status), t.status);
    // Ignored tests did not run: no outcome.
    if (t.status === 'ignored') assert.equal(t.outcome, null, t.name);
    else assert.equal(typeof t.outcome, 'string', t.name);
    assert.ok(typeof t.durationMs === 'number' && t.durationMs >= 0, t.name);
    assert.equal(typeof t.output, 'string');
    assert.ok(t.message === null || typeof t.message === 'string', t.name);
    if (t.status === 'failed') assert.ok(t.message, `${t.name} says why it failed`);
    if (t.fault !== undefined) {
      const f = t.fault;
      assert.deepEqual(Object.keys(f), ['vector', 'name', 'errorCode', 'rip', 'cr2', 'location'], t.name);
      assert.ok(Number.isInteger(f.vector) && f.vector >= 0 && f.vector <= 255);
      assert.match(f.name, /^#[A-Z]+$/);
      assert.ok(f.errorCode === null || Number.isInteger(f.errorCode));
      assert.match(f.rip, HEX);
      assert.ok(f.cr2 === null || HEX.test(f.cr2), String(f.cr2));
      assert.equal(typeof f.location, 'string');
    }
  }
  assert.ok(Array.isArray(notRun));
  for (const n of notRun) {
    assert.deepEqual(Object.keys(n), ['name', 'binary', 'file', 'line', 'reason'], n.name);
    assert.match(n.file, /\.c$/, n.name);
    assert.ok(Number.isInteger(n.line) && n.line > 0, n.name);
    assert.equal(typeof n.reason, 'string');
  }
  assert.deepEqual(Object.keys(summary), ['passed', 'failed', 'ignored', 'skipped', 'filteredOut', 'durationMs']);
  for (const status of ['passed', 'failed', 'ignored', 'skipped'] as const) {
    assert.equal(summary[status], tests.filter((t) => t.status === status).length, status);
  }
  assert.ok(typeof summary.durationMs === 'number' && summary.durationMs >= 0);
}

function elements(root: XmlElement, name: string): XmlElement[] {
  const found: XmlElement[] = [];
  const visit = (e: XmlElement) => {
    if (e.name === name) found.push(e);
    e.children.forEach(visit);
  };
  visit(root);
  return found;
}

describe('choosing tests', () => {
  test('--filter PATTERN runs the tests whose name contains it', guestTest(), async () => {
    const { result, report } = await runJson(['--filter', 'as_expected', bin.passing]);
    assert.equal(result.status, 0, describeRun(result));
    assert.deepEqual(names(report), [
      'assertion_fails_as_expected',
      'halts_as_expected',
      'panics_as_expected',
      'raises_de_as_expected',
      'raises_gp_as_expected',
    ]);
  });

  test('--filter repeated: a test runs when any filter matches', guestTest(), async () => {
    const { report } = await runJson(['--filter', 'returns', '--filter', 'halts', bin.passing]);
    assert.deepEqual(names(report), ['halts_as_expected', 'returns']);
  });

  test('--exact: filters match whole names only', guestTest(), async () => {
    const none = await kvmtest(['run', '--exact', '--filter', 'halts', bin.passing]);
    assert.equal(none.status, 3, describeRun(none));
    assert.equal(lines(none.stdout)[0], 'running 0 tests');
    assert.match(none.stdout, /test result: ok\. 0 passed; 0 failed; 0 ignored; 0 measured; 8 filtered out;/);
    assert.equal(none.stderr, 'kvmtest: no test matches "halts" (--exact): the binary has 8 tests; `kvmtest run --list` shows them\n');
    const { report } = await runJson(['--exact', '--filter', 'halts_as_expected', '--filter', 'returns', bin.passing]);
    assert.deepEqual(names(report), ['halts_as_expected', 'returns']);
  });

  test('a positional argument that is not a file is a filter, as in cargo test', guestTest(), async () => {
    const { result, report } = await runJson([bin.passing, 'halts']);
    assert.equal(result.status, 0, describeRun(result));
    assert.deepEqual(names(report), ['halts_as_expected']);
    assert.equal(report.summary.filteredOut, 7);
  });

  test('BINARY::NAME, as failure lists print it, selects in that binary only', guestTest(), async () => {
    const { report } = await runJson([bin.passing, bin.failing, `${bin.failing}::returns`]);
    assert.deepEqual(report.tests.map((t) => `${t.binary === bin.failing ? 'failing' : 'passing'}::${t.name}`).sort(),
      report.tests.filter((t) => t.binary === bin.failing).map((t) => `failing::${t.name}`).sort());
    assert.ok(report.tests.length > 0 && report.tests.every((t) => t.name.includes('returns')));
    const exact = await runJson(['--exact', bin.passing, bin.failing, `${bin.passing}::returns`]);
    assert.deepEqual(exact.report.tests.map((t) => [t.binary, t.name]), [[bin.passing, 'returns']]);
  });

  test('--skip PATTERN (repeatable) leaves tests out; with --exact, whole names', guestTest(), async () => {
    const { report } = await runJson(['--skip', 'as_expected', '-s', 'returns', bin.passing]);
    assert.ok(report.tests.length > 0, 'some tests are left');
    for (const t of report.tests) assert.ok(!t.name.includes('as_expected') && !t.name.includes('returns'), t.name);
    assert.equal(report.summary.filteredOut, 8 - report.tests.length);
    const exact = await runJson(['--exact', '--skip', 'halts', bin.passing]);
    assert.equal(exact.report.tests.length, 8, '--exact --skip halts matches no whole name');
  });

  test('filters that match nothing: the run says so on stderr and exits with status 3', guestTest(), async () => {
    const result = await kvmtest(['run', bin.passing, 'no_such_test']);
    assert.equal(result.status, 3, describeRun(result));
    assert.match(result.stdout, /^running 0 tests\n\ntest result: ok\. 0 passed; 0 failed; 0 ignored; 0 measured; 8 filtered out; finished in /);
    assert.equal(result.stderr, 'kvmtest: no test matches "no_such_test": the binary has 8 tests; `kvmtest run --list` shows them\n');
    const skipped = await kvmtest(['run', '--skip', 's', '--skip', 'zz', bin.passing]);
    assert.equal(skipped.status, 3, describeRun(skipped));
    assert.match(skipped.stderr, /no test matches --skip "s"/);
    // An empty shard is not a mistake.
    const shard = await kvmtest(['run', '--shard', '8/8', bin.passing]);
    assert.equal(shard.status, 0, describeRun(shard));
  });

  test('--show-output (and --nocapture) prints passing tests\' output in a successes section', guestTest(), async () => {
    for (const flag of ['--show-output', '--nocapture']) {
      const result = await kvmtest(['run', flag, bin.passing, 'returns']);
      assert.equal(result.status, 0, describeRun(result));
      assert.match(result.stdout, /\nsuccesses:\n\n---- returns stdout ----\noutput of returns\n\nsuccesses:\n    returns\n\ntest result: ok\./);
    }
    const plain = await kvmtest(['run', bin.passing, 'returns']);
    assert.doesNotMatch(plain.stdout, /successes:|output of returns/);
  });

  test('-q, --quiet: one character a test, then the failures and the summary', guestTest(), async () => {
    const result = await kvmtest(['run', '-q', bin.failing]);
    assert.equal(result.status, 1, describeRun(result));
    const out = lines(result.stdout);
    assert.match(out[0]!, /^running \d+ tests$/);
    assert.match(out[1]!, /^[.Fi]+$/, 'one line of marks');
    assert.ok(out[1]!.includes('F'));
    assert.ok(result.stdout.includes('\nfailures:\n'));
    assert.doesNotMatch(result.stdout, /^test \S+ \.\.\. /m);
  });

  test('--color always|never and NO_COLOR / FORCE_COLOR choose whether the pretty report is colored', guestTest(), async () => {
    const colored = (r: { stdout: string }) => r.stdout.includes('\x1b[32mok\x1b[0m');
    assert.ok(colored(await kvmtest(['run', '--color', 'always', bin.passing, 'returns'])));
    assert.ok(!colored(await kvmtest(['run', '--color', 'never', bin.passing, 'returns'], { env: { ...process.env, FORCE_COLOR: '1' } })));
    assert.ok(colored(await kvmtest(['run', bin.passing, 'returns'], { env: { ...process.env, FORCE_COLOR: '1', NO_COLOR: '' } })));
    assert.ok(!colored(await kvmtest(['run', bin.passing, 'returns'], { env: { ...process.env, FORCE_COLOR: '1', NO_COLOR: '1' } })));
    assert.ok(!colored(await kvmtest(['run', bin.passing, 'returns'], { env: { ...process.env, FORCE_COLOR: undefined, NO_COLOR: undefined } })), 'a pipe gets no color');
  });

  test('--test-threads N is --jobs N; -j N too', guestTest(), async () => {
    for (const args of [['--test-threads', '1'], ['-j', '1'], ['-j1']]) {
      const { result } = await runJson([...args, bin.passing]);
      assert.equal(result.status, 0, `${args.join(' ')}: ${describeRun(result)}`);
    }
  });

  test('--list --reporter json: a JSON list with file and line; --output writes it to a file', toolchainTest(), async () => {
    const result = await kvmtest(['run', '--list', '--reporter', 'json', bin.passing, 'halts']);
    assert.equal(result.status, 0, describeRun(result));
    const list = JSON.parse(result.stdout) as { tests: Array<{ name: string; binary: string; file: string; line: number; ignored: boolean }>; count: number; filteredOut: number };
    assert.equal(list.count, 1);
    assert.equal(list.filteredOut, 7);
    assert.equal(list.tests[0]!.name, 'halts_as_expected');
    assert.equal(list.tests[0]!.binary, bin.passing);
    assert.match(list.tests[0]!.file, /passing\.c$/);
    assert.ok(list.tests[0]!.line > 0);
    const file = join(tempDir(), 'list.json');
    const written = await kvmtest(['run', '--list', '-r', 'json', '-o', file, bin.passing]);
    assert.equal(written.stdout, '');
    assert.equal((JSON.parse(readFileSync(file, 'utf8')) as { count: number }).count, 8);
    const tap = await kvmtest(['run', '--list', '--reporter', 'tap', bin.passing]);
    assert.equal(tap.status, 2);
    assert.equal(tap.stderr, 'kvmtest: --list writes pretty or json (got --reporter tap)\n');
  });

  test('--list prints "NAME: test" lines and a count, and runs nothing', toolchainTest(), async () => {
    // The failing binary would exit 1 if its tests ran.
    const result = await kvmtest(['run', '--list', bin.failing]);
    assert.equal(result.status, 0, describeRun(result));
    assert.equal(result.stderr, '');
    assert.deepEqual(lines(result.stdout), [
      'assertion_fails: test',
      'should_gp_but_ud: test',
      'should_halt_but_returns: test',
      'should_panic_but_returns: test',
      'times_out: test',
      'uncaught_page_fault: test',
      'unexpected_port_io: test',
      '',
      '7 tests',
    ]);
  });

  test('--list marks ignored tests, honours filters and names each binary when there are several', toolchainTest(), async () => {
    const one = await kvmtest(['run', '--list', '--filter', 'zz', bin.passing]);
    assert.deepEqual(lines(one.stdout), ['zz_ignored: test (ignored)', '', '1 test']);
    const two = await kvmtest(['run', '--list', '--filter', 'returns', bin.passing, bin.failing]);
    assert.equal(two.status, 0, describeRun(two));
    assert.deepEqual(lines(two.stdout), [
      `${bin.passing}:`,
      'returns: test',
      `${bin.failing}:`,
      'should_halt_but_returns: test',
      'should_panic_but_returns: test',
      '',
      '3 tests',
    ]);
  });

  test('--include-ignored runs the ignored tests too', guestTest(), async () => {
    const without = await runJson(['--filter', 'zz_ignored', bin.passing]);
    assert.deepEqual(
      without.report.tests.map((t) => [t.name, t.status, t.output]),
      [['zz_ignored', 'ignored', '']],
    );
    const withIgnored = await runJson(['--include-ignored', '--filter', 'zz_ignored', bin.passing]);
    assert.equal(withIgnored.result.status, 0, describeRun(withIgnored.result));
    assert.deepEqual(
      withIgnored.report.tests.map((t) => [t.name, t.status, t.output]),
      [['zz_ignored', 'passed', 'output of zz_ignored\n']],
    );
    assert.equal(withIgnored.report.summary.ignored, 0);
  });

  test('--shard 1/3, 2/3, 3/3: disjoint, together every test, the same from run to run', guestTest(), async () => {
    const binaries = [bin.many, bin.passing];
    const key = (t: JsonReport['tests'][number]) => `${t.binary}::${t.name}`;
    const all = await runJson(binaries);
    const shards = ['1/3', '2/3', '3/3'];
    const runs = await Promise.all([...shards, ...shards].map((shard) => runJson(['--shard', shard, ...binaries])));
    const first = runs.slice(0, 3).map((r) => r.report.tests.map(key));
    const again = runs.slice(3).map((r) => r.report.tests.map(key));
    assert.deepEqual(again, first, 'each shard is the same from run to run');
    for (const shard of first) assert.ok(shard.length > 0, 'no shard is empty');
    const union = first.flat();
    assert.equal(new Set(union).size, union.length, 'no test is in two shards');
    assert.deepEqual(new Set(union), new Set(all.report.tests.map(key)), 'the shards together hold every test');
    // --list agrees with what a shard runs.
    const listed = await kvmtest(['run', '--list', '--shard', '2/3', bin.many]);
    const manyInShard2 = runs[1]!.report.tests.filter((t) => t.binary === bin.many).map((t) => `${t.name}: test`);
    assert.deepEqual(lines(listed.stdout).slice(0, -2), manyInShard2);
  });
});

describe('running tests', () => {
  test("--jobs up to this host's limit and --shard up to 1000000 are accepted", toolchainTest(), async () => {
    const { max } = jobLimit();
    const atLimit = await kvmtest(['run', '--list', '--jobs', String(max), bin.passing]);
    assert.equal(atLimit.status, 0, describeRun(atLimit));
    const beyond = await kvmtest(['run', '--list', '--jobs', String(max + 1), bin.passing]);
    assert.equal(beyond.status, 2, describeRun(beyond));
    assert.match(beyond.stderr, new RegExp(`--jobs must be at most ${max} on this host`));
    const lastShard = await kvmtest(['run', '--list', '--shard', '1000000/1000000', bin.passing]);
    assert.equal(lastShard.status, 0, describeRun(lastShard));
    assert.equal(lines(lastShard.stdout).at(-1), '0 tests');
  });

  test('--timeout MS is the timeout of tests that set none', guestTest(), async () => {
    const started = Date.now();
    const { result, report } = await runJson(['--timeout', '200', bin.spin]);
    assert.equal(result.status, 1, describeRun(result));
    assert.ok(Date.now() - started < 8000, 'the 200 ms timeout, not the 10 s default, ended the test');
    const [spins] = report.tests;
    assert.equal(spins?.outcome, 'timeout');
    assert.match(spins.message!, /timed out after 200 ms; the guest was at kt_test_spins_forever\b.*\(0x[0-9a-f]+\)/);
  });

  test("--timeout does not override a test's own .timeout_ms", guestTest(), async () => {
    const { report } = await runJson(['--timeout', '5000', '--filter', 'times_out', bin.failing]);
    assert.match(report.tests[0]!.message!, /timed out after 100 ms/);
  });

  test('--bail: stops after the first failure, reports fewer tests, says so on stderr', guestTest(), async () => {
    const { result, report } = await runJson(['--bail', '--jobs', '1', bin.failing]);
    assert.equal(result.status, 1, describeRun(result));
    assertJsonSchema(report);
    assert.ok(report.summary.failed >= 1);
    assert.ok(report.tests.length < 7, `fewer than all 7 tests reported (got ${report.tests.length})`);
    const note = /^kvmtest: stopped after (\d+) failure\(s\) \(--bail\); (\d+) test\(s\) not run\n$/.exec(result.stderr);
    assert.ok(note, result.stderr);
    assert.equal(Number(note[1]), report.summary.failed);
    assert.equal(Number(note[2]) + report.tests.length, 7, 'reported and not run add up to all the tests');
    // The left-out tests are listed, with where they are declared, so a consumer can run them.
    assert.equal(report.notRun.length, Number(note[2]));
    assert.deepEqual(
      [...report.tests.map((t) => t.name), ...report.notRun.map((t) => t.name)].sort(),
      ['assertion_fails', 'should_gp_but_ud', 'should_halt_but_returns', 'should_panic_but_returns', 'times_out', 'uncaught_page_fault', 'unexpected_port_io'],
    );
    for (const n of report.notRun) {
      assert.deepEqual([n.binary, n.reason], [bin.failing, '--bail stopped the run'], n.name);
      assert.ok(n.file.endsWith('failing.c'), n.file);
    }
  });

  test('--bail with --reporter junit: the tests left out are skipped test cases, and the report stays valid for Jenkins', guestTest(withXmllint()), async () => {
    const result = await kvmtest(['run', '--bail', '--jobs', '1', '--reporter', 'junit', bin.failing]);
    assert.equal(result.status, 1, describeRun(result));
    assert.deepEqual(schemaErrors(result.stdout), []);
    const suite = parseXml(result.stdout).children[0]!;
    const cases = elements(suite, 'testcase');
    assert.equal(cases.length, 7, 'every selected test is a test case');
    const notRun = cases.filter((c) => c.children.some((k) => k.name === 'skipped' && k.attributes['message'] === 'not run: --bail stopped the run'));
    const note = /(\d+) test\(s\) not run/.exec(result.stderr);
    assert.ok(note, result.stderr);
    assert.equal(notRun.length, Number(note[1]));
    assert.ok(notRun.length > 0 && notRun.length < 7, `${notRun.length} left out`);
    assert.deepEqual([suite.attributes['tests'], suite.attributes['skipped']], ['7', String(notRun.length)]);
  });

  test('--bail N: stops after N failures', guestTest(), async () => {
    const { result, report } = await runJson(['--bail', '3', '--jobs', '1', bin.failing]);
    assert.equal(result.status, 1, describeRun(result));
    assert.ok(report.summary.failed >= 3, `at least 3 failures before stopping (got ${report.summary.failed})`);
    assert.ok(report.tests.length < 7, `fewer than all 7 tests reported (got ${report.tests.length})`);
    assert.match(result.stderr, /stopped after \d+ failure\(s\) \(--bail\); \d+ test\(s\) not run/);
  });

  test('--bail without failures changes nothing', guestTest(), async () => {
    const result = await kvmtest(['run', '--bail', bin.passing]);
    assert.equal(result.status, 0, describeRun(result));
    assert.equal(result.stderr, '');
    assert.match(result.stdout, /test result: ok\. 7 passed; 0 failed; 1 ignored;/);
  });

  test('stable order: the same report, with each output under its test, across runs, --jobs and --isolation', guestTest(), async () => {
    const binaries = [bin.many, bin.passing, bin.failing];
    const variants = [['--jobs', '1'], ['--jobs', '2'], ['--jobs', '2'], ['--jobs', '3'], ['--jobs', '2', '--isolation', 'vm'], ['--isolation', 'snapshot']];
    const runs = await Promise.all(variants.map((args) => runJson([...args, ...binaries])));
    const shape = (report: JsonReport) => report.tests.map((t) => [t.binary, t.name, t.status, t.outcome]);
    const [first, ...others] = runs.map((r) => r.report);
    assert.equal(first!.tests.length, 24 + 8 + 7);
    for (const [i, other] of others.entries()) assert.deepEqual(shape(other), shape(first!), variants[i + 1]!.join(' '));
    for (const [i, { result, report }] of runs.entries()) {
      assert.equal(result.status, 1, variants[i]!.join(' '));
      for (const t of report.tests) {
        const expected = t.status === 'ignored' ? '' : `output of ${t.name}\n`;
        assert.equal(t.output, expected, `${t.name} with ${variants[i]!.join(' ')}`);
      }
    }
  });
});

describe('reporting', () => {
  test('--reporter json: one document in the schema of src/report/json.ts', guestTest(), async () => {
    const { result, report } = await runJson([bin.passing, bin.failing]);
    assert.equal(result.status, 1, describeRun(result));
    assert.equal(result.stderr, '');
    assertJsonSchema(report);
    assert.equal(report.tests.length, 15);
    assert.deepEqual([report.summary.passed, report.summary.failed, report.summary.ignored], [7, 7, 1]);
    const pageFault = report.tests.find((t) => t.name === 'uncaught_page_fault')!;
    assert.equal(pageFault.fault?.cr2, '0x40000000');
    assert.equal(pageFault.binary, bin.failing);
  });

  test('--reporter tap: TAP version 13, a plan, one test point per test', guestTest(), async () => {
    const result = await kvmtest(['run', '--reporter', 'tap', bin.passing, bin.failing]);
    assert.equal(result.status, 1, describeRun(result));
    const out = lines(result.stdout);
    assert.equal(out[0], 'TAP version 13');
    assert.equal(out[1], '1..15');
    const points = out.filter((line) => /^(not )?ok \d+ /.test(line));
    assert.equal(points.length, 15);
    points.forEach((line, i) => assert.match(line, new RegExp(`^(not )?ok ${i + 1} - `), line));
    assert.equal(points.filter((line) => line.startsWith('not ok')).length, 7);
    assert.ok(points.includes(`ok 8 - ${bin.passing}::zz_ignored # SKIP`), points.join('\n'));
    assert.ok(points.includes(`not ok 9 - ${bin.failing}::assertion_fails`), points.join('\n'));
    // A YAML block under each failure.
    assert.equal(out.filter((line) => line === '  ---').length, 7);
    assert.equal(out.filter((line) => line === '  ...').length, 7);
    assert.deepEqual(out.slice(-4, -1), ['# pass 7', '# fail 7', '# skip 1']);
  });

  test('--reporter junit: XML valid against the Jenkins JUnit schema, with one testcase per test', guestTest(withXmllint()), async () => {
    const [result, json] = await Promise.all([
      kvmtest(['run', '--reporter', 'junit', bin.passing, bin.failing]),
      runJson([bin.passing, bin.failing]),
    ]);
    assert.equal(result.status, 1, describeRun(result));
    assert.deepEqual(schemaErrors(result.stdout), []);
    const root = parseXml(result.stdout);
    assert.equal(root.name, 'testsuites');
    assert.deepEqual(
      [root.attributes['tests'], root.attributes['failures'], root.attributes['errors']],
      ['15', '7', '0'],
    );
    assert.deepEqual(
      root.children.map((suite) => [suite.name, suite.attributes['name'], suite.attributes['skipped']]),
      [['testsuite', bin.passing, '1'], ['testsuite', bin.failing, '0']],
    );
    // The classname is the binary without its dots, which Jenkins would split at.
    assert.deepEqual(
      [...new Set(elements(root, 'testcase').map((c) => c.attributes['classname']))],
      [bin.passing.replace(/\./g, '_'), bin.failing.replace(/\./g, '_')],
    );
    const cases = elements(root, 'testcase');
    assert.deepEqual(
      cases.map((c) => c.attributes['name']),
      names(json.report),
    );
    const failed = cases.filter((c) => c.children.some((child) => child.name === 'failure'));
    assert.deepEqual(
      failed.map((c) => c.attributes['name']),
      json.report.tests.filter((t) => t.status === 'failed').map((t) => t.name),
    );
  });

  test('KVMTEST_JUNIT_FILE_ATTRIBUTES=1: each testcase says where its test is declared, as the JSON report does', guestTest(), async () => {
    const [result, json] = await Promise.all([
      kvmtest(['run', '--reporter', 'junit', bin.passing, bin.failing], { env: { ...process.env, KVMTEST_JUNIT_FILE_ATTRIBUTES: '1' } }),
      runJson([bin.passing, bin.failing]),
    ]);
    assert.equal(result.status, 1, describeRun(result));
    assert.deepEqual(
      elements(parseXml(result.stdout), 'testcase').map((c) => [c.attributes['name'], c.attributes['file'], c.attributes['line']]),
      json.report.tests.map((t) => [t.name, t.file, String(t.line)]),
    );
    assert.ok(json.report.tests.every((t) => t.file.endsWith('.c') && t.line > 0));
  });

  test('--output FILE: the report goes to the file, not to standard output', guestTest(), async () => {
    const file = join(tempDir(), 'report.json');
    const result = await kvmtest(['run', '--reporter', 'json', '--output', file, bin.passing, bin.failing]);
    assert.equal(result.status, 1, describeRun(result));
    assert.equal(result.stdout, '');
    const report = JSON.parse(readFileSync(file, 'utf8')) as JsonReport;
    assertJsonSchema(report);
    assert.equal(report.tests.length, 15);

    const pretty = join(tempDir(), 'report.txt');
    const prettyRun = await kvmtest(['run', '--output', pretty, bin.passing]);
    assert.equal(prettyRun.status, 0, describeRun(prettyRun));
    assert.equal(prettyRun.stdout, '');
    assert.ok(existsSync(pretty));
    assert.match(readFileSync(pretty, 'utf8'), /^running 8 tests\n[\s\S]*\ntest result: ok\. 7 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in \d+\.\d\ds\n$/);
  });

  test('--output FILE: the report replaces FILE whole, through a symbolic link the file it points to, and no temporary file stays', guestTest(), async () => {
    const dir = mkdtempSync(join(tempDir(), 'output-'));
    const file = join(dir, 'report.json');
    writeFileSync(file, 'an older report\n');
    const link = join(dir, 'latest.json');
    symlinkSync('report.json', link);
    const result = await kvmtest(['run', '--reporter', 'json', '--output', link, bin.passing]);
    assert.equal(result.status, 0, describeRun(result));
    assert.ok(lstatSync(link).isSymbolicLink(), 'the link is still a link');
    assertJsonSchema(JSON.parse(readFileSync(file, 'utf8')));
    assert.deepEqual(readdirSync(dir).sort(), ['latest.json', 'report.json']);
  });

  test('--output a device or a pipe: written in place', guestTest(), async () => {
    const result = await kvmtest(['run', '--reporter', 'json', '--output', '/dev/null', bin.passing]);
    assert.equal(result.status, 0, describeRun(result));
    assert.equal(result.stderr, '');
    const piped = await runCommand('sh', ['-c', `"${process.execPath}" "${BIN}" run --reporter json --output /dev/stdout "${bin.passing}" | head -c 1`]);
    assert.equal(piped.stdout, '{');
    assert.equal(piped.stderr, '', 'a reader that went away is not an error');
  });
});
