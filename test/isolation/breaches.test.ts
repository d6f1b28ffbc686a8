// The ways destructive tests once decided another test's verdict (issue 7),
// through the real CLI in both isolation modes: fixtures/breaches.c's
// attacks, each followed by canaries that must get their own verdicts, and
// fixtures/own-tables.c, whose tests load page tables of their own and must
// still get the verdicts they earned.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadTestTable } from '../../src/image/test-table.js';
import type { JsonTest } from '../../src/report/json.js';
import { ISOLATION_MODES, type Isolation } from '../../src/runner/executor.js';
import { guestSkipReason, guestTest } from '../helpers/kvm.js';
import { buildFixture, byName, jsonReport, runCli } from './helpers.js';

let breaches: string;
let ownTables: string;

before(() => {
  if (guestSkipReason()) return;
  breaches = buildFixture('breaches.elf', ['breaches.c'], ['--allow-simd']);
  ownTables = buildFixture('own-tables.elf', ['own-tables.c']);
});

async function report(isolation: Isolation, elf: string): Promise<Map<string, JsonTest>> {
  const run = await runCli(['--jobs', '1', '--isolation', isolation, '--reporter', 'json', elf]);
  return byName(jsonReport(run));
}

const verdict = (t: JsonTest) => `${t.status} ${t.outcome}${t.fault ? ` ${t.fault.name}` : ''}: ${t.message ?? ''}`;

describe('attacks on the next test (fixtures/breaches.c)', () => {
  test('every canary gets its own verdict, and each attack the verdict it gets on a fresh VM', guestTest({ timeout: 60_000 }), async () => {
    const lines = new Map(loadTestTable(breaches).map((t) => [t.name, t.line]));
    const [snapshot, vm] = [await report('snapshot', breaches), await report('vm', breaches)];
    const attacks = [...vm.keys()].filter((name) => name.includes('_a_'));
    assert.ok(attacks.length >= 11, `the fixture has ${attacks.length} attacks`);
    const breachesFound: string[] = [];
    for (const [mode, tests] of [['snapshot', snapshot], ['vm', vm]] as const) {
      for (const attack of attacks) {
        const n = attack.slice(0, attack.indexOf('_a_'));
        const got = (suffix: string) => tests.get(`${n}_${suffix}`)!;
        const pristine = got('b_pristine');
        const ownAssert = got('c_assert_fails');
        const expectsGp = got('d_expects_gp');
        const problems = [
          pristine.status !== 'passed' && `${n}_b_pristine: ${verdict(pristine)}`,
          pristine.output !== vm.get(`${n}_b_pristine`)!.output &&
            `${n}_b_pristine printed ${JSON.stringify(pristine.output)}, on a fresh VM ${JSON.stringify(vm.get(`${n}_b_pristine`)!.output)}`,
          (ownAssert.outcome !== 'assert-failed' || !ownAssert.message?.includes(`breaches.c:${lines.get(`${n}_c_assert_fails`)}:`)) &&
            `${n}_c_assert_fails did not fail with its own assertion: ${verdict(ownAssert)}`,
          (expectsGp.status !== 'failed' || expectsGp.outcome !== 'returned') && `${n}_d_expects_gp: ${verdict(expectsGp)}`,
          mode === 'snapshot' && verdict(tests.get(attack)!).split(':')[0] !== verdict(vm.get(attack)!).split(':')[0] &&
            `${attack}: ${verdict(tests.get(attack)!)}; on a fresh VM: ${verdict(vm.get(attack)!)}`,
          mode === 'snapshot' && tests.get(attack)!.output !== vm.get(attack)!.output &&
            `${attack} printed ${JSON.stringify(tests.get(attack)!.output)}, on a fresh VM ${JSON.stringify(vm.get(attack)!.output)}`,
        ].filter((p): p is string => typeof p === 'string');
        for (const p of problems) breachesFound.push(`--isolation ${mode}, after ${attack}: ${p}`);
      }
    }
    if (breachesFound.length > 0) assert.fail(breachesFound.join('\n'));
  });

  test("a test's own use of the doorbell port is reported as the test's, never as a return or a fault", guestTest(), async () => {
    const tests = await report('snapshot', breaches);
    const fake = tests.get('t08_a_fake_doorbell')!;
    assert.equal(fake.outcome, 'unexpected-io', verdict(fake));
    assert.match(fake.message ?? '', /port 0xf6 at kt_test_t08_a_fake_doorbell\+0x[0-9a-f]+ at \S+breaches\.c:\d+ \(0x[0-9a-f]+\): the port is the engine's doorbell/);
    const jump = tests.get('t09_a_jump_past_doorbell')!;
    assert.equal(jump.outcome, 'error', verdict(jump));
    assert.match(jump.message ?? '', /HLT inside the engine's return stub\+0x2 \(0x4002\) without ringing its doorbell/);
  });
});

describe('tests with page tables of their own (fixtures/own-tables.c)', () => {
  for (const isolation of ISOLATION_MODES) {
    test(`--isolation ${isolation}: each gets the verdict it earned`, guestTest({ timeout: 60_000 }), async () => {
      const tests = await report(isolation, ownTables);
      const expect = (name: string, status: string, outcome: string, message?: RegExp) => {
        const t = tests.get(name)!;
        assert.equal(`${t.status} ${t.outcome}`, `${status} ${outcome}`, `${name}: ${verdict(t)}`);
        if (message) assert.match(t.message ?? '', message, name);
      };
      expect('a_returns', 'passed', 'returned');
      expect('b_should_halt_but_returns', 'failed', 'returned', /^expected the test to halt \(should_halt\), but it returned$/);
      expect('c_should_fault_ud', 'passed', 'fault');
      assert.match(tests.get('c_should_fault_ud')!.fault!.location, /^kt_test_c_should_fault_ud\+/);
      expect('d_kassert_fails', 'failed', 'assert-failed', /own-tables\.c:\d+: read_cr3\(\) == 0/);
      expect('e_page_fault', 'passed', 'fault');
      assert.equal(tests.get('e_page_fault')!.fault!.cr2, '0x80000000');
      expect('f_should_halt', 'passed', 'halted');
      expect('g_engine_area_unmapped', 'failed', 'triple-fault',
        /do not map the engine's GDT and TSS at 0x1000 to itself: exceptions are delivered through 0x1000-0x9000/);
      expect('h_return_stub_remapped', 'failed', 'error',
        /the doorbell rang from the engine's return stub \(0x4000\), but the page tables loaded \(cr3 0x10000000\) map that address to physical 0x10004000, not to the engine's stubs/);
    });
  }
});
