// `kvmtest run` on tests that skip themselves (kskip): the run succeeds,
// and each reporter shows the skips in its own format, as its consumers read
// it: TAP through Perl's TAP::Parser, JUnit through xmllint and the Jenkins
// JUnit schema, JSON through JSON.parse.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { guestTest } from '../helpers/kvm.js';
import { parseTap, schemaErrors, withTapParser, withXmllint } from '../helpers/consumers.js';
import { parseXml } from '../report/xml.js';
import { buildFixture, CAN_BUILD, describeRun, kvmtest, lines, runJson } from './helpers.js';

const SUMMARY = /^test result: ok\. 1 passed; 0 failed; 3 ignored; 0 measured; 0 filtered out; finished in \d+\.\d\ds$/;

describe('kvmtest run: tests that skip themselves', () => {
  let elf = '';
  before(async () => {
    if (CAN_BUILD) elf = await buildFixture('skipping.elf', ['skipping.c']);
  });

  test('pretty: "ignored, REASON" as cargo shows ignored tests, counted among the ignored; exit status 0', guestTest(), async () => {
    const result = await kvmtest(['run', elf]);
    assert.equal(result.status, 0, describeRun(result));
    assert.equal(result.stderr, '');
    const out = lines(result.stdout);
    assert.deepEqual(out.slice(0, -1), [
      'running 4 tests',
      'test passes ... ok',
      'test skips_although_it_should_panic ... ignored, needs a hardware-virtualized KVM',
      'test skips_itself ... ignored, no x2APIC on this host',
      'test zz_ignored ... ignored',
      '',
    ]);
    assert.match(out.at(-1)!, SUMMARY);
  });

  test('tap: ok points with a SKIP directive and the reason, as TAP::Parser reads them', guestTest(withTapParser()), async () => {
    const result = await kvmtest(['run', '--reporter', 'tap', elf]);
    assert.equal(result.status, 0, describeRun(result));
    const tap = parseTap(result.stdout);
    assert.deepEqual(tap.parseErrors, []);
    assert.deepEqual([tap.version, tap.planned], [13, 4]);
    assert.deepEqual(
      tap.tests.map((t) => [t.number, t.ok, t.description, t.directive, t.explanation]),
      [
        [1, true, '- passes', '', ''],
        [2, true, '- skips_although_it_should_panic', 'SKIP', 'needs a hardware-virtualized KVM'],
        [3, true, '- skips_itself', 'SKIP', 'no x2APIC on this host'],
        [4, true, '- zz_ignored', 'SKIP', ''],
      ],
    );
    assert.deepEqual(tap.skipped, [2, 3, 4]);
    assert.deepEqual(lines(result.stdout).slice(-4, -1), ['# pass 1', '# fail 0', '# skip 3']);
  });

  test('junit: <skipped message="REASON"/>, counted as skipped; the output kept; valid for Jenkins', guestTest(withXmllint()), async () => {
    const result = await kvmtest(['run', '--reporter', 'junit', elf]);
    assert.equal(result.status, 0, describeRun(result));
    assert.deepEqual(schemaErrors(result.stdout), []);
    const suite = parseXml(result.stdout).children[0]!;
    assert.deepEqual([suite.attributes['tests'], suite.attributes['failures'], suite.attributes['skipped']], ['4', '0', '3']);
    const cases = new Map(suite.children.map((c) => [c.attributes['name'], c]));
    const skip = cases.get('skips_itself')!;
    assert.deepEqual(skip.children.map((c) => [c.name, c.attributes, c.text]), [
      ['skipped', { message: 'no x2APIC on this host' }, ''],
      ['system-out', {}, 'probing for x2APIC\n'],
    ]);
    assert.deepEqual(cases.get('skips_although_it_should_panic')!.children.map((c) => [c.name, c.attributes]), [
      ['skipped', { message: 'needs a hardware-virtualized KVM' }],
    ]);
  });

  test('json: status and outcome "skipped", the reason as the message, a skipped count apart from ignored', guestTest(), async () => {
    const { result, report } = await runJson([elf]);
    assert.equal(result.status, 0, describeRun(result));
    assert.deepEqual(
      report.tests.map((t) => [t.name, t.status, t.outcome, t.message]),
      [
        ['passes', 'passed', 'returned', null],
        ['skips_although_it_should_panic', 'skipped', 'skipped', 'needs a hardware-virtualized KVM'],
        ['skips_itself', 'skipped', 'skipped', 'no x2APIC on this host'],
        ['zz_ignored', 'ignored', null, null],
      ],
    );
    assert.equal(report.tests.find((t) => t.name === 'skips_itself')!.output, 'probing for x2APIC\n');
    assert.deepEqual(
      [report.summary.passed, report.summary.failed, report.summary.ignored, report.summary.skipped],
      [1, 0, 1, 2],
    );
  });
});
