// Snapshot isolation and the interrupt controllers (issue 12): the attacks
// of fixtures/interrupts.kvmtest.ts, through the real CLI in both isolation
// modes. Every canary must pass, and every attack must get the verdict it
// gets on a fresh VM.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { JsonTest } from '../../src/report/json.js';
import { guestTest } from '../helpers/kvm.js';
import { byName, FIXTURES, jsonReport, runCli } from './helpers.js';

const verdict = (t: JsonTest | undefined) => (t ? `${t.status} ${t.outcome ?? ''}: ${t.message ?? ''}` : 'missing');

describe('attacks through the interrupt controllers (fixtures/interrupts.kvmtest.ts)', () => {
  test('every canary passes after its attack, and each attack gets the verdict it gets on a fresh VM', guestTest({ timeout: 120_000 }), async () => {
    const file = join(FIXTURES, 'interrupts.kvmtest.ts');
    const run = async (isolation: string) => byName(jsonReport(await runCli(['--jobs', '1', '--isolation', isolation, '--reporter', 'json', file])));
    const [snapshot, vm] = [await run('snapshot'), await run('vm')];
    const attacks = [...vm.keys()].filter((name) => name.includes('_a_'));
    assert.ok(attacks.length >= 21, `the fixture has ${attacks.length} attacks`);
    const problems: string[] = [];
    for (const [mode, tests] of [['snapshot', snapshot], ['vm', vm]] as const) {
      for (const attack of attacks) {
        const canary = attack.slice(0, attack.indexOf('_a_')) + '_b_canary';
        if (tests.get(canary)?.status !== 'passed') problems.push(`--isolation ${mode}, after ${attack}: ${canary}: ${verdict(tests.get(canary))}`);
        const here = verdict(tests.get(attack)).split(':')[0];
        const fresh = verdict(vm.get(attack)).split(':')[0];
        if (mode === 'snapshot' && here !== fresh) problems.push(`${attack}: ${verdict(tests.get(attack))}; on a fresh VM: ${verdict(vm.get(attack))}`);
      }
    }
    if (problems.length > 0) assert.fail(problems.join('\n'));
  });
});
