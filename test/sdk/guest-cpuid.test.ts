// .cpuid in KVMTEST through the real `kvmtest run`: the guest's cpuid reads
// what the edits say, edits apply in order, this_cpu_has follows them, and a
// plain test after an edited one (same worker, so the same machine cache)
// reads the default CPUID: the edits are part of the machine's key. Where
// this KVM ignores an edit (PVM passes leaf 1 ECX/EDX and leaf 7 through)
// the test is skipped with the leaf and the register, never run.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { guestTest, isSoftwareKvm } from '../helpers/kvm.js';
import { CAN_BUILD, describeRun, runJson, type JsonReport } from '../cli/helpers.js';
import { buildFixtures } from './sdk-helpers.js';

type JsonTest = JsonReport['tests'][number];
const SHOWN = /^1\.eax=(0x[0-9a-f]+) 6\.eax=(0x[0-9a-f]+) 80000001\.ecx=(0x[0-9a-f]+)\n$/;

describe('the guest library: .cpuid and this_cpu_has', guestTest(), () => {
  let tests: Map<string, JsonTest>;
  let vmIsolation: Map<string, JsonTest>;
  before(async () => {
    if (!CAN_BUILD) return;
    const elf = buildFixtures('guest-cpuid.elf', ['guest-cpuid.c']);
    const runs = await Promise.all([runJson(['-j1', elf]), runJson(['-j1', '--isolation', 'vm', elf])]);
    for (const { result } of runs) assert.equal(result.status, 0, describeRun(result));
    [tests, vmIsolation] = runs.map(({ report }) => new Map(report.tests.map((t) => [t.name, t])));
  });

  function passed(name: string, from = tests): JsonTest {
    const t = from.get(name);
    assert.ok(t, `no result for ${name}`);
    assert.equal(t.status, 'passed', `${name}: ${t.status} ${t.message ?? ''}`);
    return t;
  }

  function shown(name: string, from = tests): [bigint, bigint, bigint] {
    const match = SHOWN.exec(passed(name, from).output);
    assert.ok(match, passed(name, from).output);
    return [BigInt(match[1]!), BigInt(match[2]!), BigInt(match[3]!)];
  }

  test('the guest reads (value & keep) | set for each edited register; the others as by default', () => {
    const [eax1, , ecx] = shown('a_plain');
    assert.deepEqual(shown('b_edited'), [(eax1 & ~0xfn) | 5n, 0x12345678n, ecx & ~1n]);
  });

  test('edits of one register apply in order', () => {
    passed('e_edits_apply_in_order');
  });

  test('a plain test after edited ones reads the default CPUID, in both isolation modes', () => {
    assert.deepEqual(shown('d_plain'), shown('a_plain'));
    assert.deepEqual(shown('d_plain', vmIsolation), shown('a_plain'));
    assert.deepEqual(shown('b_edited', vmIsolation), shown('b_edited'));
  });

  test('this_cpu_has / cpu_has read the guest\'s CPUID; a leaf above the highest reads 0', () => {
    passed('f_cpu_has');
  });

  test('an edit this KVM ignores skips the test, naming the leaf and the register; elsewhere the guest sees it', () => {
    const t = tests.get('c_hides_xsave')!;
    if (isSoftwareKvm()) {
      assert.equal(t.status, 'skipped', t.message ?? '');
      assert.match(
        t.message ?? '',
        /^\.cpuid: this host's KVM does not apply the test's CPUID leaf 0x1 subleaf 0 override \(in a guest ecx reads 0x[0-9a-f]+, not 0x[0-9a-f]+\); software-assisted KVMs such as PVM/,
      );
      assert.equal(t.output, '', 'the test did not run');
    } else {
      passed('c_hides_xsave');
    }
  });
});
