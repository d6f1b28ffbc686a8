// Machines with far more guest memory than their tests touch: snapshot
// capture and restore cost what a test touches (fixtures/big-memory.c), and
// a test over the guest memory limit fails alone, saying why.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ISOLATION_MODES } from '../../src/runner/executor.js';
import { guestSkipReason, guestTest } from '../helpers/kvm.js';
import { buildFixture, byName, jsonReport, runCli } from './helpers.js';

let elf: string;

before(() => {
  if (guestSkipReason()) return;
  elf = buildFixture('big-memory.elf', ['big-memory.c']);
});

describe('tests with 15 GiB of RAM', () => {
  for (const isolation of ISOLATION_MODES) {
    test(`--isolation ${isolation}: they pass, one after the other on the same machine, and the one over the limit fails alone`, guestTest({ timeout: 60_000 }), async () => {
      const run = await runCli(['--jobs', '1', '--isolation', isolation, '--reporter', 'json', elf]);
      const tests = byName(jsonReport(run));
      for (const name of ['a_touches_a_little_of_15_gib', 'b_finds_it_zero_again', 'd_small']) {
        const t = tests.get(name)!;
        assert.equal(t.status, 'passed', `${name}: ${t.outcome}: ${t.message}`);
      }
      const over = tests.get('c_over_the_limit')!;
      assert.equal(over.status, 'failed');
      assert.match(over.message ?? '', /cannot build this test's machine: this machine would have 17\.\d GiB of guest memory .* more than the limit of 16 GiB/);
      assert.equal(run.status, 1, run.stderr);
    });
  }

  test('--max-guest-memory raises the limit: the 17 GiB test runs and passes', guestTest({ timeout: 60_000 }), async () => {
    const run = await runCli(['--jobs', '1', '--max-guest-memory', '18G', '--filter', 'c_over', '--reporter', 'json', elf]);
    const over = byName(jsonReport(run)).get('c_over_the_limit')!;
    assert.equal(over.status, 'passed', `${over.outcome}: ${over.message}`);
    assert.equal(run.status, 0, run.stderr);
  });
});
