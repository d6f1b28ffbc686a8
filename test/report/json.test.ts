import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { jsonReport, jsonReporter } from '../../src/report/json.js';
import { BIN, HOSTILE_OUTPUT, OTHER_BIN, assertFailed, caseFor, drive, hostile, ignored, memorySink, pageFault, passed, skipped, summarize } from './fixtures.js';

describe('JSON reporter', () => {
  test('writes one parseable document with every test and the summary', async () => {
    const sink = memorySink();
    const results = [passed('p', BIN, 'hi\n'), pageFault('pf'), assertFailed('broken'), ignored('skipped', 'why'), hostile('h', OTHER_BIN)];
    await drive(jsonReporter(sink), results, { durationMs: 20.5 });
    assert.equal(sink.chunks.length, 1 + results.length + 2, 'written as results arrive: the opening, each test, the (empty) notRun list and the summary');
    assert.equal(
      sink.text,
      `${JSON.stringify(jsonReport(results, summarize(results, 20.5), results.map(caseFor)), null, 2)}\n`,
      'the same bytes as the whole document built at once',
    );
    const report = JSON.parse(sink.text);
    assert.deepEqual(Object.keys(report), ['tests', 'notRun', 'summary']);
    assert.deepEqual(report.notRun, []);

    assert.deepEqual(report.summary, { passed: 1, failed: 3, ignored: 1, skipped: 0, filteredOut: 0, durationMs: 20.5 });
    assert.deepEqual(
      report.tests.map((t: { name: string; status: string }) => [t.name, t.status]),
      [['p', 'passed'], ['pf', 'failed'], ['broken', 'failed'], ['skipped', 'ignored'], ['h', 'failed']],
    );
    assert.deepEqual(report.tests[0], {
      name: 'p',
      binary: BIN,
      file: 'tests.c',
      line: 3,
      status: 'passed',
      outcome: 'returned',
      durationMs: 3,
      output: 'hi\n',
      message: null,
    });
  });

  test('faults carry hex strings, so 64-bit addresses survive', async () => {
    const sink = memorySink();
    await drive(jsonReporter(sink), [pageFault('pf'), assertFailed('broken')]);
    const [pf, broken] = JSON.parse(sink.text).tests;
    assert.deepEqual(pf.fault, {
      vector: 14,
      name: '#PF',
      errorCode: 2,
      rip: '0xffffffff80001234',
      cr2: '0xdead0000',
      location: 'poke+0x3 (0xffffffff80001234)',
    });
    assert.equal(pf.outcome, 'fault');
    assert.equal('fault' in broken, false, 'no fault key without a fault');
  });

  test('absent fault details are null', async () => {
    const sink = memorySink();
    const gp = pageFault('gp');
    gp.fault = { vector: 13, name: '#GP', rip: 0x1000n, location: '0x1000' };
    await drive(jsonReporter(sink), [gp]);
    assert.deepEqual(JSON.parse(sink.text).tests[0].fault, {
      vector: 13,
      name: '#GP',
      errorCode: null,
      rip: '0x1000',
      cr2: null,
      location: '0x1000',
    });
  });

  test('ignored tests have a null outcome and keep their reason', async () => {
    const sink = memorySink();
    await drive(jsonReporter(sink), [ignored('skipped', 'needs a real APIC'), ignored('bare')]);
    const [skipped, bare] = JSON.parse(sink.text).tests;
    assert.equal(skipped.outcome, null);
    assert.equal(skipped.message, 'needs a real APIC');
    assert.equal(bare.message, null);
  });

  test('a test that skipped itself: status and outcome "skipped", its reason as the message, counted apart from ignored', async () => {
    const sink = memorySink();
    await drive(jsonReporter(sink), [skipped('needs_x2apic', 'no x2APIC here'), ignored('later')]);
    const report = JSON.parse(sink.text);
    assert.deepEqual(report.tests[0], {
      name: 'needs_x2apic',
      binary: BIN,
      file: 'tests.c',
      line: 9,
      status: 'skipped',
      outcome: 'skipped',
      durationMs: 1.5,
      output: 'probing\n',
      message: 'no x2APIC here',
    });
    assert.deepEqual([report.summary.ignored, report.summary.skipped], [1, 1]);
  });

  test('multi-line messages and any guest bytes round-trip unchanged', async () => {
    const sink = memorySink();
    await drive(jsonReporter(sink), [assertFailed('broken'), hostile('h')]);
    const [broken, h] = JSON.parse(sink.text).tests;
    assert.equal(broken.message, assertFailed('broken').message);
    assert.equal(broken.output, 'booting\r\nstep 1 done');
    assert.equal(h.output, HOSTILE_OUTPUT);
    assert.equal(h.message, hostile('h').message);
  });

  test('each test is written when its result arrives, before the run ends', async () => {
    const sink = memorySink();
    const reporter = jsonReporter(sink);
    await reporter.onRunStart?.({ tests: [], binaries: [BIN] });
    await reporter.onTestResult?.(passed('first', BIN, 'early output\n'));
    assert.match(sink.text, /"name": "first"[\s\S]*"output": "early output\\n"/);
  });

  test('empty runs and runs whose start was not announced are still one document', async () => {
    for (const start of [true, false]) {
      for (const results of [[], [passed('p')]]) {
        const sink = memorySink();
        await drive(jsonReporter(sink), results, { start });
        const announced = start ? results.map(caseFor) : [];
        assert.equal(sink.text, `${JSON.stringify(jsonReport(results, summarize(results, 20), announced), null, 2)}\n`, `start ${start}, ${results.length} tests`);
      }
    }
  });

  test('each test says where it is declared; a hand-written record without a file name still has the keys', async () => {
    const sink = memorySink();
    await drive(jsonReporter(sink), [pageFault('pf'), { ...passed('bare'), file: '', line: 0 }]);
    const [pf, bare] = JSON.parse(sink.text).tests;
    assert.deepEqual([pf.file, pf.line], ['src/poke.c', 20]);
    assert.deepEqual([bare.file, bare.line], ['', 0]);
  });

  test('tests that --bail left out are listed in notRun, in report order, wherever they were in the list', async () => {
    const announced = [passed('a'), passed('b'), passed('c'), passed('d', OTHER_BIN), passed('e', OTHER_BIN)];
    const results = [announced[1]!, announced[3]!];
    const sink = memorySink();
    const reporter = jsonReporter(sink);
    await reporter.onRunStart?.({ tests: announced.map(caseFor), binaries: [BIN, OTHER_BIN] });
    for (const result of results) await reporter.onTestResult?.(result);
    const summary = { ...summarize(results, 20), notRun: 3 };
    await reporter.onRunEnd?.(summary);
    const report = JSON.parse(sink.text);
    assert.deepEqual(report.tests.map((t: { name: string }) => t.name), ['b', 'd']);
    assert.deepEqual(report.notRun, [
      { name: 'a', binary: BIN, file: 'tests.c', line: 3, reason: '--bail stopped the run' },
      { name: 'c', binary: BIN, file: 'tests.c', line: 3, reason: '--bail stopped the run' },
      { name: 'e', binary: OTHER_BIN, file: 'tests.c', line: 3, reason: '--bail stopped the run' },
    ]);
    assert.equal(sink.text, `${JSON.stringify(jsonReport(results, summary, announced.map(caseFor)), null, 2)}\n`, 'the same bytes as built at once');
    assert.deepEqual(Object.keys(report.summary), ['passed', 'failed', 'ignored', 'skipped', 'filteredOut', 'durationMs'], 'a --bail run is complete');
  });

  test('an interrupted run gives its reason to the tests it left without a result', async () => {
    const sink = memorySink();
    const reporter = jsonReporter(sink);
    await reporter.onRunStart?.({ tests: [caseFor(passed('a')), caseFor(passed('b'))], binaries: [BIN] });
    await reporter.onTestResult?.(passed('a'));
    await reporter.onRunEnd?.({ ...summarize([passed('a')], 20), incomplete: 'interrupted by SIGINT\nsecond line', notRun: 1 });
    assert.deepEqual(JSON.parse(sink.text).notRun, [{ name: 'b', binary: BIN, file: 'tests.c', line: 3, reason: 'interrupted by SIGINT' }]);
  });

  test('a complete run has exactly the five summary keys; an incomplete one says why and how many did not run', async () => {
    const complete = memorySink();
    await drive(jsonReporter(complete), [passed('p')]);
    assert.deepEqual(Object.keys(JSON.parse(complete.text).summary), ['passed', 'failed', 'ignored', 'skipped', 'filteredOut', 'durationMs']);

    const cut = memorySink();
    await drive(jsonReporter(cut), [passed('p')], { summary: { incomplete: 'interrupted by SIGINT', notRun: 3 } });
    assert.deepEqual(JSON.parse(cut.text).summary, {
      passed: 1,
      failed: 0,
      ignored: 0,
      skipped: 0,
      filteredOut: 0,
      durationMs: 20,
      incomplete: true,
      incompleteReason: 'interrupted by SIGINT',
      notRun: 3,
    });
  });
});
