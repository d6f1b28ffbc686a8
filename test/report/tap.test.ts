import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { tapReporter } from '../../src/report/tap.js';
import { parseTap, withTapParser } from '../helpers/consumers.js';
import { OTHER_BIN, assertFailed, caseFor, drive, hostile, ignored, memorySink, pageFault, passed, skipped, summarize } from './fixtures.js';

const lines = (...text: string[]): string => text.map((line) => `${line}\n`).join('');

describe('TAP reporter', () => {
  test('writes version, plan, test points and YAML diagnostics for failures', async () => {
    const sink = memorySink();
    await drive(tapReporter(sink), [
      passed('p'),
      pageFault('pf'),
      assertFailed('broken'),
      ignored('skipped', 'needs an #APIC\nreally'),
      ignored('bare'),
    ]);
    assert.equal(
      sink.text,
      lines(
        'TAP version 13',
        '1..5',
        'ok 1 - p',
        'not ok 2 - pf',
        '  ---',
        '  message: "#PF (page fault) at poke+0x3 (0xffffffff80001234): write to a not-present page (error code 0x2) at 0xdead0000"',
        '  outcome: fault',
        '  fault:',
        '    vector: 14',
        '    name: "#PF"',
        '    errorCode: 2',
        '    rip: "0xffffffff80001234"',
        '    cr2: "0xdead0000"',
        '    location: "poke+0x3 (0xffffffff80001234)"',
        '  ...',
        'not ok 3 - broken',
        '  ---',
        '  message: "assertion failed at tests.c:12: x == 2\\n  left: x = 1\\n  right: 2"',
        '  outcome: assert-failed',
        '  output: "booting\\nstep 1 done"',
        '  ...',
        'ok 4 - skipped # SKIP needs an #APIC really',
        'ok 5 - bare # SKIP',
        '# pass 1',
        '# fail 2',
        '# skip 2',
        '# duration_ms 20',
      ),
    );
  });

  test('a test that skipped itself is an ok point with a SKIP directive and its reason, counted in # skip', async () => {
    const sink = memorySink();
    await drive(tapReporter(sink), [skipped('needs_x2apic', 'no x2APIC # here\nreally'), ignored('bare'), passed('p')]);
    assert.equal(
      sink.text,
      lines(
        'TAP version 13',
        '1..3',
        'ok 1 - needs_x2apic # SKIP no x2APIC # here really',
        'ok 2 - bare # SKIP',
        'ok 3 - p',
        '# pass 1',
        '# fail 0',
        '# skip 2',
        '# duration_ms 20',
      ),
    );
  });

  test('escapes strings YAML cannot hold raw with double quotes', async () => {
    const sink = memorySink();
    await drive(tapReporter(sink), [hostile('hostile')]);
    assert.ok(
      sink.text.includes('  message: "kpanic(\\"<&> \\\\\\"quoted\\\\\\" #3\\")\\nsecond line\\x01"\n'),
      sink.text,
    );
    assert.ok(
      sink.text.includes(
        '  output: "a <b> & \\"c\\" \'d\' ]]> \\x00\\x07\\x1b[31mred\\x1b[0m \\ufffe\\tend\\n"\n',
      ),
      sink.text,
    );
    assert.ok(!/[\x00-\x08\x0b-\x1f\ufffe]/.test(sink.text), 'no raw control characters in the stream');
  });

  test('multi-line text, leading spaces, blank lines and trailing newlines read back exactly with TAP::Parser', withTapParser(), async () => {
    const sink = memorySink();
    const message = '  indented first\nsecond\n\n  ...\n---\nkey: value # not a comment\n\n';
    const output = 'one\n\n  two \\ "three"\n';
    await drive(tapReporter(sink), [{ ...assertFailed('tricky'), message, output }, assertFailed('plain')]);
    const parsed = parseTap(sink.text);
    assert.deepEqual(parsed.parseErrors, []);
    assert.equal(parsed.tests[0]!.diagnostics?.['message'], message);
    assert.equal(parsed.tests[0]!.diagnostics?.['output'], output);
    assert.equal(parsed.tests[0]!.diagnostics?.['outcome'], 'assert-failed');
    assert.equal(parsed.tests[1]!.diagnostics?.['output'], 'booting\nstep 1 done');
  });

  test('escapes "#" in names so a name cannot start a directive', async () => {
    const sink = memorySink();
    await drive(tapReporter(sink), [passed('odd # SKIP name\\')]);
    assert.match(sink.text, /^ok 1 - odd \\# SKIP name\\\\$/m);
  });

  test('puts the plan last when the test list was not announced', async () => {
    const sink = memorySink();
    await drive(tapReporter(sink), [passed('a'), passed('b')], { start: false });
    assert.equal(sink.text, lines('TAP version 13', 'ok 1 - a', 'ok 2 - b', '1..2', '# pass 2', '# fail 0', '# skip 0', '# duration_ms 20'));
  });

  test('qualifies names with their binary when the run spans several', async () => {
    const sink = memorySink();
    await drive(tapReporter(sink), [passed('a'), passed('b', OTHER_BIN)]);
    assert.match(sink.text, /^ok 1 - build\/tests\.elf::a$/m);
    assert.match(sink.text, /^ok 2 - build\/more\.elf::b$/m);
  });

  test('an incomplete run bails out with the reason and the count of tests not run', async () => {
    const sink = memorySink();
    const reporter = tapReporter(sink);
    reporter.onRunStart?.({ tests: [caseFor(passed('a')), caseFor(passed('b')), caseFor(passed('c'))], binaries: ['build/tests.elf'] });
    reporter.onTestResult?.(passed('a'));
    await reporter.onRunEnd?.({ ...summarize([passed('a')], 20), incomplete: 'interrupted by SIGTERM', notRun: 2 });
    assert.equal(
      sink.text,
      lines('TAP version 13', '1..3', 'ok 1 - a', 'Bail out! interrupted by SIGTERM; 2 of 3 tests not run', '# pass 1', '# fail 0', '# skip 0', '# duration_ms 20'),
    );
  });
});
