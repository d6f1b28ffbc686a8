import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { prettyReporter } from '../../src/report/pretty.js';
import { colorEnabled } from '../../src/report/output.js';
import { BIN, OTHER_BIN, assertFailed, drive, ignored, memorySink, pageFault, passed, skipped } from './fixtures.js';

describe('pretty reporter', () => {
  test('prints cargo-style lines, the failures section and a FAILED summary', async () => {
    const sink = memorySink();
    await drive(
      prettyReporter(sink),
      [
        passed('bad_msr_faults'),
        passed('check_inw_port_read'),
        ignored('some_ignored', 'needs a real APIC'),
        assertFailed('broken'),
        passed('last_one'),
      ],
      { durationMs: 23.4 },
    );
    assert.equal(
      sink.text,
      [
        'running 5 tests',
        'test bad_msr_faults ... ok',
        'test check_inw_port_read ... ok',
        'test some_ignored ... ignored, needs a real APIC',
        'test broken ... FAILED',
        'test last_one ... ok',
        '',
        'failures:',
        '',
        '---- broken stdout ----',
        'booting',
        'step 1 done',
        'assertion failed at tests.c:12: x == 2',
        '  left: x = 1',
        '  right: 2',
        '',
        'failures:',
        '    broken',
        '',
        'test result: FAILED. 3 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.02s',
        '',
      ].join('\n'),
    );
  });

  test('says "ok" when nothing failed, and "1 test" for one', async () => {
    const sink = memorySink();
    await drive(prettyReporter(sink), [passed('only')], { durationMs: 1234.5 });
    assert.equal(
      sink.text,
      'running 1 test\ntest only ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.23s\n',
    );
  });

  test('an empty run still prints a summary', async () => {
    const sink = memorySink();
    await drive(prettyReporter(sink), [], { durationMs: 0 });
    assert.equal(sink.text, 'running 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n');
  });

  test('a test that skipped itself reads as cargo shows an ignored one, with its reason, and counts among the ignored', async () => {
    const sink = memorySink();
    await drive(prettyReporter(sink), [passed('p'), skipped('needs_x2apic', 'no x2APIC here'), ignored('plain')]);
    assert.match(sink.text, /^test needs_x2apic \.\.\. ignored, no x2APIC here\n/m);
    assert.ok(!sink.text.includes('probing'), "a skipped test's output is not shown, as a passing one's is not");
    assert.match(sink.text, /^test result: ok\. 1 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in /m);
  });

  test('an ignored test without a reason, and a multi-line reason folded to one line', async () => {
    const sink = memorySink();
    await drive(prettyReporter(sink), [ignored('plain'), ignored('why', 'slow\non CI')]);
    assert.match(sink.text, /^test plain \.\.\. ignored\n/m);
    assert.match(sink.text, /^test why \.\.\. ignored, slow on CI\n/m);
  });

  test('a failure with no output shows just the reason; one with no message shows its outcome', async () => {
    const sink = memorySink();
    const quiet = { ...pageFault('pf'), message: `${pageFault('pf').message}\n\n` };
    const silent = { ...passed('hung'), status: 'failed' as const, outcome: 'timeout' as const, output: 'tick\n' };
    await drive(prettyReporter(sink), [quiet, silent]);
    const failures = sink.text.slice(sink.text.indexOf('\nfailures:\n'));
    assert.equal(
      failures,
      [
        '',
        'failures:',
        '',
        '---- pf stdout ----',
        quiet.message.trimEnd(),
        '',
        '---- hung stdout ----',
        'tick',
        'test failed (outcome: timeout)',
        '',
        'failures:',
        '    pf',
        '    hung',
        '',
        'test result: FAILED. 0 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.02s',
        '',
      ].join('\n'),
    );
  });

  test('groups by binary with a Running line and qualifies names in the failures list', async () => {
    const sink = memorySink();
    await drive(prettyReporter(sink), [
      passed('a_ok'),
      pageFault('a_pf'),
      passed('b_ok', OTHER_BIN),
      ignored('b_skip', undefined, OTHER_BIN),
    ]);
    assert.equal(
      sink.text,
      [
        '     Running build/tests.elf',
        '',
        'running 2 tests',
        'test a_ok ... ok',
        'test a_pf ... FAILED',
        '',
        '     Running build/more.elf',
        '',
        'running 2 tests',
        'test b_ok ... ok',
        'test b_skip ... ignored',
        '',
        'failures:',
        '',
        '---- build/tests.elf::a_pf stdout ----',
        pageFault('a_pf').message,
        '',
        'failures:',
        '    build/tests.elf::a_pf',
        '',
        'test result: FAILED. 2 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.02s',
        '',
      ].join('\n'),
    );
  });

  test('colors ok, FAILED and ignored only when asked to', async () => {
    const colored = memorySink();
    await drive(prettyReporter(colored, { color: true }), [passed('p'), assertFailed('f'), ignored('i', 'why')]);
    assert.match(colored.text, /^test p \.\.\. \x1b\[32mok\x1b\[0m$/m);
    assert.match(colored.text, /^test f \.\.\. \x1b\[31mFAILED\x1b\[0m$/m);
    assert.match(colored.text, /^test i \.\.\. \x1b\[33mignored\x1b\[0m, why$/m);
    assert.match(colored.text, /^test result: \x1b\[31mFAILED\x1b\[0m\. /m);

    const plainSink = memorySink();
    await drive(prettyReporter(plainSink), [passed('p'), assertFailed('f')]);
    assert.ok(!plainSink.text.includes('\x1b'), 'no escape codes for a non-TTY sink');
  });

  test('auto color needs a TTY and no NO_COLOR', () => {
    const tty = { isTTY: true, write() {} };
    assert.equal(colorEnabled(tty, {}), true);
    assert.equal(colorEnabled(tty, { NO_COLOR: '1' }), false);
    assert.equal(colorEnabled(tty, { NO_COLOR: '' }), true, 'an empty NO_COLOR does not count (no-color.org)');
    assert.equal(colorEnabled({ write() {} }, {}), false);
    assert.equal(colorEnabled({ isTTY: false, write() {} }, {}), false);
  });

  test('FORCE_COLOR forces color on (unless 0 or false), NO_COLOR wins over it, and --color always|never over both', () => {
    const pipe = { write() {} };
    const tty = { isTTY: true, write() {} };
    assert.equal(colorEnabled(pipe, { FORCE_COLOR: '1' }), true);
    assert.equal(colorEnabled(pipe, { FORCE_COLOR: '' }), true, 'set, even empty, as Node reads it');
    assert.equal(colorEnabled(tty, { FORCE_COLOR: '0' }), false);
    assert.equal(colorEnabled(tty, { FORCE_COLOR: 'false' }), false);
    assert.equal(colorEnabled(pipe, { FORCE_COLOR: '1', NO_COLOR: '1' }), false);
    assert.equal(colorEnabled(pipe, { NO_COLOR: '1' }, 'always'), true);
    assert.equal(colorEnabled(tty, { FORCE_COLOR: '1' }, 'never'), false);
  });

  test('quiet: a character a test, 88 to a line, then the failures and the summary', async () => {
    const sink = memorySink();
    const results = [...Array.from({ length: 99 }, (_, i) => passed(`p${i}`)), assertFailed('f'), ignored('i', 'why')];
    await drive(prettyReporter(sink, { quiet: true }), results);
    const lines = sink.text.split('\n');
    assert.equal(lines[0], 'running 101 tests');
    assert.equal(lines[1], '.'.repeat(88));
    assert.equal(lines[2], `${'.'.repeat(11)}Fi`);
    assert.equal(lines[3], '');
    assert.equal(lines[4], 'failures:');
    assert.match(sink.text, /\ntest result: FAILED\. 99 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out;/);
  });

  test('showOutput: a successes section with each passing test\'s output, before the failures', async () => {
    const sink = memorySink();
    await drive(prettyReporter(sink, { showOutput: true }), [passed('loud', BIN, 'hello\n'), passed('quiet'), assertFailed('f')]);
    assert.match(
      sink.text,
      /\nsuccesses:\n\n---- loud stdout ----\nhello\n\nsuccesses:\n    loud\n    quiet\n\nfailures:\n/,
    );
  });

  test('an incomplete run: the summary of what ran, then a line on what did not', async () => {
    const sink = memorySink();
    await drive(prettyReporter(sink), [passed('a'), passed('b')], { summary: { incomplete: 'interrupted by SIGINT\nmore', notRun: 3 } });
    assert.ok(
      sink.text.endsWith(
        '\ntest result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.02s\n' +
          'test run incomplete: interrupted by SIGINT; 3 of 5 tests did not run\n',
      ),
      sink.text,
    );
  });
});
