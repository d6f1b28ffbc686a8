// The destructive campaign's pure parts, without /dev/kvm: the generator is
// a function of its seed, its tests sort into groups, and the judging of
// canaries and of lingering state does what campaign.test.ts relies on.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { JsonTest } from '../../src/report/json.js';
import { baselineTables, parseBaseline } from './campaign/baseline.js';
import { generateCampaign, type Campaign } from './campaign/generate.js';
import { mulberry32 } from './campaign/prng.js';
import { canaryBreaches, canaryProblem, divergences } from './campaign/verdicts.js';

const probeOutput = (tsc: string) =>
  ['zero stack -1', 'zero ist -1', 'zero ram -1', 'zero bss -1', 'fixed cr0 80010033', 'fixed rflags 2', 'walk gdt 8000000000000003', 'engine 0 0 af9b000000ffff 0 0', 'msr 10 ' + tsc, 'msr 402 0'].join('\n');

const campaign = (seed: number, tests = 20): Campaign =>
  generateCampaign({ seed, tests, baselineTables: '/* tables */', fileName: 'campaign.c' });

const result = (name: string, fields: Partial<JsonTest>): JsonTest => ({
  name,
  binary: 'campaign.elf',
  file: 'campaign.c',
  line: 1,
  status: 'passed',
  outcome: 'returned',
  durationMs: 1,
  output: '',
  message: null,
  ...fields,
});

describe('campaign generator', () => {
  test('one seed gives one campaign; another seed another', () => {
    assert.equal(campaign(7).source, campaign(7).source);
    assert.notEqual(campaign(7).source, campaign(8).source);
    const a = mulberry32(1);
    const b = mulberry32(1);
    assert.deepEqual([a.u32(), a.u32(), a.u64()], [b.u32(), b.u32(), b.u64()]);
  });

  test('a larger campaign of the same seed begins with the smaller one', () => {
    const small = campaign(7, 20).groups;
    assert.deepEqual(campaign(7, 300).groups.slice(0, 20), small);
  });

  test('sorted by name, each destructive test is followed by its own canaries', () => {
    const c = campaign(3, 120);
    const names = [...c.source.matchAll(/^CT\((\w+),/gm)].map((m) => m[1]!);
    const expected = c.groups.flatMap((g) => [g.destroy, ...g.canaries.map((k) => k.name)]);
    assert.deepEqual([...names].sort(), expected);
    assert.equal(new Set(names).size, names.length, 'names are unique');
  });

  test('the line recorded for an assertion canary is the line of its kassert', () => {
    const c = campaign(5);
    const lines = c.source.split('\n');
    for (const canary of c.groups.flatMap((g) => g.canaries).filter((k) => k.line !== undefined)) {
      assert.match(lines[canary.line! - 1]!, new RegExp(`^CT\\(${canary.name},.*kassert\\(0, "${canary.text}"\\)`));
    }
  });

  test('a destructive test is a list of calls, one per line, and no loop', () => {
    const call = /^ {4}(TRY\(op_\w+, [^;]*\);|op_\w+\([^;]*\);|UD2\(\);|hlt\(\);|kassert\(0, "[^"]*"\);|kpanic\("[^"]*"\);|outw\(0xf4, 0x[0-9a-f]+\);|outb\(0xf6, 0x[0-9a-f]+\);) \/\* [^*]* \*\/$/;
    for (const g of campaign(11, 200).groups) {
      const body = g.source.split('\n').slice(1, -1);
      assert.ok(body.length >= 1 && body.length <= 7, g.source);
      for (const line of body) assert.match(line, call, g.destroy);
    }
  });
});

describe('campaign baseline', () => {
  test('what differs between the two fresh machines is left out, and said so', () => {
    const b = parseBaseline([probeOutput('1000'), probeOutput('2000')]);
    assert.equal(b.msrs.has(0x10), false);
    assert.equal(b.msrs.get(0x402), 0n);
    assert.match(b.unstable.join(), /MSR 0x10 \(0x1000, 0x2000\)/);
    const tables = baselineTables(b, probeOutput('1000'));
    assert.match(tables, /\[OBS_cr0\] = 0x80010033ull/);
    assert.match(tables, /\{ 0x402, 0x0ull \}/);
    assert.doesNotMatch(tables, /\{ 0x10, /);
    assert.match(tables, /\[1\] = 0xaf9b000000ffffull/);
  });

  test('an engine area that differs between fresh machines stops the campaign', () => {
    assert.throws(() => parseBaseline([probeOutput('1'), probeOutput('1').replace('af9b', 'cf93')]), /differ between two fresh machines/);
  });
});

describe('campaign verdicts', () => {
  const c = campaign(9, 3);
  const canary = (kind: string) => c.groups[0]!.canaries.find((k) => k.kind === kind)!;

  test('an assertion canary passes only as its own assertion', () => {
    const k = canary('assert');
    const own = result(k.name, { status: 'failed', outcome: 'assert-failed', message: `assertion failed at /x/campaign.c:${k.line}: 0\n  message: ${k.text}` });
    assert.equal(canaryProblem(k, own, 'campaign.c'), undefined);
    assert.match(canaryProblem(k, result(k.name, {}), 'campaign.c')!, /^passed returned/);
    const elsewhere = { ...own, message: own.message!.replace(`:${k.line}:`, ':1:') };
    assert.notEqual(canaryProblem(k, elsewhere, 'campaign.c'), undefined);
  });

  test('the #UD canary must fault in its own function', () => {
    const k = canary('ud');
    const fault = { vector: 6, name: '#UD', errorCode: null, rip: '0x1', cr2: null, location: `kt_test_${k.name}+0x20 (0x1)` };
    assert.equal(canaryProblem(k, result(k.name, { outcome: 'fault', fault }), 'campaign.c'), undefined);
    const continued = { ...fault, location: 'kt_test_c0001_a_destroy+0x20 (0x1)' };
    assert.notEqual(canaryProblem(k, result(k.name, { outcome: 'fault', fault: continued }), 'campaign.c'), undefined);
  });

  test('a state difference that lingers is put down to the group where it appeared', () => {
    const tests = new Map<string, JsonTest>();
    const line = 'state: MSR 0x402 is 0x1, a fresh machine has 0';
    c.groups.forEach((g, i) => {
      for (const k of g.canaries) {
        tests.set(k.name, k.kind === 'state' && i > 0 ? result(k.name, { status: 'failed', outcome: 'assert-failed', output: `${line}\n` }) : result(k.name, {}));
      }
    });
    const state = canaryBreaches(c, tests).filter((b) => b.canary.kind === 'state');
    assert.deepEqual(state.map((b) => [b.group.id, b.since?.id, b.fresh]), [
      [c.groups[1]!.id, undefined, [line.slice('state: '.length)]],
      [c.groups[2]!.id, c.groups[1]!.id, []],
    ]);
  });

  test('destructive tests are compared by status, outcome and fault vector only', () => {
    const d = c.groups[0]!.destroy;
    const a = new Map([[d, result(d, { status: 'failed', outcome: 'unexpected-io', message: 'at 0x1', durationMs: 3 })]]);
    const b = new Map([[d, result(d, { status: 'failed', outcome: 'unexpected-io', message: 'at 0x2', durationMs: 9 })]]);
    assert.deepEqual(divergences(c, a, b), []);
    const other = new Map([[d, result(d, { status: 'failed', outcome: 'halted' })]]);
    assert.equal(divergences(c, a, other).length, 1);
  });
});
