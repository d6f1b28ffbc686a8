// `kvmtest run` with the default reporter, in cargo test's format, and the
// rules that decide whether a test passed: each expectation met passes,
// everything else fails with a reason saying what was expected and what
// happened.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import { guestTest, isSoftwareKvm } from '../helpers/kvm.js';
import { buildFixtures, CAN_BUILD, describeRun, kvmtest, lines, runJson, type JsonReport } from './helpers.js';

const SUMMARY = /^test result: (ok|FAILED)\. (\d+) passed; (\d+) failed; (\d+) ignored; 0 measured; \d+ filtered out; finished in \d+\.\d\ds$/;
/** "fn+0x12 (0x...)", with the source line the binary's line table gives ("fn+0x12 at failing.c:30 (0x...)"). */
const FUNCTION_OFFSET = (fn: string) => new RegExp(`\\b${fn}\\+0x[0-9a-f]+( at \\S+:\\d+)? \\(0x[0-9a-f]+\\)`);
const FIXTURE = readFileSync(new URL('../../../test/cli/fixtures/failing.c', import.meta.url), 'utf8').split('\n');
/** " at test/cli/fixtures/failing.c:N", N being the line of failing.c that holds `text`. */
const SOURCE_LINE = (text: string) => ` at test/cli/fixtures/failing.c:${FIXTURE.findIndex((line) => line.includes(text)) + 1} `;

const PASSING = [
  'assertion_fails_as_expected',
  'halts_as_expected',
  'panics_as_expected',
  'raises_de_as_expected',
  'raises_gp_as_expected',
  'reads_its_port',
  'returns',
];
const FAILING = [
  'assertion_fails',
  'should_gp_but_ud',
  'should_halt_but_returns',
  'should_panic_but_returns',
  'times_out',
  'uncaught_page_fault',
  'unexpected_port_io',
];

/** The failures section of a pretty report: test name -> the text under its "---- NAME stdout ----" line. */
function failureBlocks(stdout: string): Map<string, string> {
  const start = stdout.indexOf('\nfailures:\n\n');
  assert.ok(start >= 0, `a failures: section in:\n${stdout}`);
  const end = stdout.indexOf('\nfailures:\n', start + 1);
  assert.ok(end > start, `a second failures: line (the list of names) in:\n${stdout}`);
  const blocks = new Map<string, string>();
  const body = stdout.slice(start + '\nfailures:\n\n'.length, end + 1);
  for (const block of body.split(/^---- /m).slice(1)) {
    const match = /^(\S+) stdout ----\n([\s\S]*)$/.exec(block);
    assert.ok(match, `a "---- NAME stdout ----" header: ${block}`);
    blocks.set(match[1]!, match[2]!);
  }
  return blocks;
}

const bin = { passing: '', failing: '', int3: '' };
let built: Promise<void> | undefined;

/** Builds this file's fixtures once, for every suite that needs them. */
function buildOnce(): Promise<void> {
  built ??= buildFixtures({ passing: ['passing.c'], failing: ['failing.c'], int3: ['int3.c'] }).then((paths) => {
    Object.assign(bin, paths);
  });
  return built;
}

describe('kvmtest run: the default (pretty) report and exit status', () => {
  before(async () => {
    if (CAN_BUILD) await buildOnce();
  });

  test('all pass: cargo-style lines, ignored tests shown as such, exit status 0', guestTest(), async () => {
    const result = await kvmtest(['run', bin.passing]);
    assert.equal(result.status, 0, describeRun(result));
    assert.equal(result.stderr, '');
    const out = lines(result.stdout);
    assert.deepEqual(out.slice(0, -1), [
      'running 8 tests',
      ...PASSING.map((name) => `test ${name} ... ok`),
      'test zz_ignored ... ignored',
      '',
    ]);
    const summary = SUMMARY.exec(out.at(-1)!);
    assert.ok(summary, out.at(-1));
    assert.deepEqual(summary.slice(1, 5), ['ok', '7', '0', '1']);
    assert.ok(!result.stdout.includes('failures:'));
  });

  test('failures: FAILED lines, a failures section with output and reason, exit status 1', guestTest(), async () => {
    const result = await kvmtest(['run', bin.failing]);
    assert.equal(result.status, 1, describeRun(result));
    assert.equal(result.stderr, '');
    const out = lines(result.stdout);
    assert.deepEqual(out.slice(0, FAILING.length + 2), ['running 7 tests', ...FAILING.map((name) => `test ${name} ... FAILED`), '']);
    // The list of failed names, then the summary.
    assert.deepEqual(out.slice(-(FAILING.length + 3), -1), ['failures:', ...FAILING.map((name) => `    ${name}`), '']);
    const summary = SUMMARY.exec(out.at(-1)!);
    assert.ok(summary, out.at(-1));
    assert.deepEqual(summary.slice(1, 5), ['FAILED', '0', '7', '0']);

    const blocks = failureBlocks(result.stdout);
    assert.deepEqual([...blocks.keys()], FAILING);
    for (const [name, block] of blocks) {
      // Each failure shows its own test's output first, then the reason.
      const [output, ...reason] = block.split('\n');
      assert.equal(output, `output of ${name}`, block);
      assert.ok(reason.join('\n').trim() !== '', `a reason for ${name}`);
      assert.ok(!reason.some((line) => line.startsWith('output of ')), `only ${name}'s output under its header:\n${block}`);
    }
    assert.match(blocks.get('assertion_fails')!, /assertion failed at \S*failing\.c:\d+: \(1 \+ 1\) == 3/);
    assert.match(blocks.get('should_panic_but_returns')!, /expected the test to panic \(should_panic\), but it returned/);
  });
});

describe('kvmtest run: pass and fail rules', () => {
  let passing: JsonReport;
  let failing: JsonReport;

  before(async () => {
    if (!CAN_BUILD) return;
    await buildOnce();
    if (guestTest().skip) return;
    [{ report: passing }, { report: failing }] = await Promise.all([runJson([bin.passing]), runJson([bin.failing])]);
  });

  const result = (report: JsonReport, name: string) => {
    const found = report.tests.find((t) => t.name === name);
    assert.ok(found, `a result for ${name} in ${JSON.stringify(report.tests.map((t) => t.name))}`);
    return found;
  };

  test('a test passes when it returns and expects nothing else', guestTest(), () => {
    const r = result(passing, 'returns');
    assert.deepEqual([r.status, r.outcome, r.message], ['passed', 'returned', null]);
  });

  test('should_panic passes on a panic and on a failed assertion', guestTest(), () => {
    assert.deepEqual([result(passing, 'panics_as_expected').status, result(passing, 'panics_as_expected').outcome], ['passed', 'panicked']);
    const assertion = result(passing, 'assertion_fails_as_expected');
    assert.deepEqual([assertion.status, assertion.outcome], ['passed', 'assert-failed']);
  });

  test('should_halt passes when the test halts', guestTest(), () => {
    const r = result(passing, 'halts_as_expected');
    assert.deepEqual([r.status, r.outcome], ['passed', 'halted']);
  });

  test('should_fault passes on exactly that fault, FAULT_DE (vector 0) included', guestTest(), () => {
    const gp = result(passing, 'raises_gp_as_expected');
    assert.deepEqual([gp.status, gp.outcome, gp.fault?.vector, gp.fault?.name], ['passed', 'fault', 13, '#GP']);
    const de = result(passing, 'raises_de_as_expected');
    assert.deepEqual([de.status, de.outcome, de.fault?.vector, de.fault?.name], ['passed', 'fault', 0, '#DE']);
  });

  test('every failing fixture fails', guestTest(), () => {
    assert.deepEqual(
      failing.tests.map((t) => [t.name, t.status]),
      FAILING.map((name) => [name, 'failed']),
    );
    assert.deepEqual(failing.summary.failed, FAILING.length);
  });

  test('should_panic that returns: the reason says a panic was expected and the test returned', guestTest(), () => {
    const r = result(failing, 'should_panic_but_returns');
    assert.equal(r.outcome, 'returned');
    assert.match(r.message!, /expected the test to panic \(should_panic\), but it returned/);
  });

  test('should_fault = FAULT_GP that raises #UD: the reason names both', guestTest(), () => {
    const r = result(failing, 'should_gp_but_ud');
    assert.equal(r.fault?.vector, 6);
    assert.match(r.message!, /expected the test to raise #GP \(should_fault = 13\), but it raised #UD/);
    assert.match(r.message!, FUNCTION_OFFSET('kt_test_should_gp_but_ud'));
    assert.ok(r.message!.includes(SOURCE_LINE('__asm__ volatile("ud2")')), `the line of the ud2 in: ${r.message}`);
  });

  test('should_halt that returns: the reason says a halt was expected and the test returned', guestTest(), () => {
    const r = result(failing, 'should_halt_but_returns');
    assert.match(r.message!, /expected the test to halt \(should_halt\), but it returned/);
  });

  test('an uncaught #PF: vector, error code, RIP as function+offset and CR2', guestTest(), () => {
    const r = result(failing, 'uncaught_page_fault');
    assert.equal(r.outcome, 'fault');
    assert.match(r.message!, /#PF \(page fault\)/);
    assert.match(r.message!, /error code 0x0\b/);
    assert.match(r.message!, FUNCTION_OFFSET('kt_test_uncaught_page_fault'));
    assert.match(r.message!, /\b0x40000000\b/);
    assert.equal(r.fault?.vector, 14);
    assert.equal(r.fault?.errorCode, 0);
    assert.equal(r.fault?.cr2, '0x40000000');
    assert.match(r.fault!.location, FUNCTION_OFFSET('kt_test_uncaught_page_fault'));
    assert.ok(r.fault!.location.includes(SOURCE_LINE('(void)*(volatile uint64_t *)UNMAPPED')), `the line of the read in: ${r.fault!.location}`);
    assert.ok(r.fault!.location.endsWith(`(${r.fault!.rip})`), `${r.fault!.location} ends with the RIP ${r.fault!.rip}`);
  });

  test('a .timeout_ms timeout: the reason gives the limit and the RIP', guestTest(), () => {
    const r = result(failing, 'times_out');
    assert.equal(r.outcome, 'timeout');
    assert.match(r.message!, /timed out after 100 ms/);
    assert.match(r.message!, FUNCTION_OFFSET('kt_test_times_out'));
    assert.ok(r.durationMs >= 100, `ran ${r.durationMs} ms, at least its 100 ms timeout`);
  });

  test('unexpected port I/O: the reason names port, direction and size', guestTest(), () => {
    const r = result(failing, 'unexpected_port_io');
    assert.equal(r.outcome, 'unexpected-io');
    assert.match(r.message!, /\bport 0x99\b/);
    assert.match(r.message!, /\b16-bit\b/);
    assert.match(r.message!, /\bwrite \(out\)/);
    assert.match(r.message!, /\b0x1234\b/);
  });

  test('int3 in a test: an emulation failure on a software KVM, #BP on a hardware one', guestTest(), async () => {
    const { result: run, report } = await runJson([bin.int3]);
    assert.equal(run.status, 1, describeRun(run));
    const [r] = report.tests;
    assert.equal(r?.status, 'failed');
    if (isSoftwareKvm()) {
      assert.equal(r.outcome, 'error');
      assert.match(r.message!, /emulation failure/);
      assert.match(r.message!, /\bkt_test_uses_int3\b/);
    } else {
      assert.equal(r.outcome, 'fault');
      assert.equal(r.fault?.vector, 3);
      assert.match(r.message!, /#BP/);
    }
  });
});
