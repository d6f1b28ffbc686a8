// 10,000 guests in a row must not leak: every VM, vCPU, mapping and memory
// slot a run creates is released, whatever way the run ended, and so is
// what 10,000 runs of machines kept open (openMachine) take between their
// restores. The open file descriptors stay the same and RSS stays flat
// (with slack for a lazy GC).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import { openMachine, runGuest, type Outcome, type RunGuestOptions } from '../../src/index.js';
import { guestSkipReason, guestTest } from '../helpers/kvm.js';
import { flat } from '../helpers/toolchain.js';

const RUNS = 10_000;
const WARM_UP = 500;
const RSS_SLACK = 30 * 1024 * 1024;
const LOAD = 0x100000;

let kinds: Array<{ options: RunGuestOptions; outcome: Outcome }>;

before(() => {
  if (guestSkipReason()) return;
  // Runs that end in different ways, so each exit path's cleanup is exercised.
  kinds = [
    { options: { image: { flat: flat('mov $1, %eax\nret'), loadAddress: LOAD } }, outcome: 'returned' },
    { options: { image: { flat: flat('mov (0), %rax\nret'), loadAddress: LOAD } }, outcome: 'fault' },
    { options: { image: { flat: flat('mov $0x99, %dx\nin %dx, %al\nret'), loadAddress: LOAD } }, outcome: 'unexpected-io' },
    {
      options: { image: { flat: flat('mov $0x10000000, %eax\nmovq $7, (%rax)\nret'), loadAddress: LOAD }, ram: [[0x10000000, 0x10001000]] },
      outcome: 'returned',
    },
  ];
});

const openFds = () => readdirSync('/proc/self/fd').length;
const collect = () => (globalThis as { gc?: () => void }).gc?.();

test(`${RUNS} runs keep open fds and RSS flat`, guestTest({ timeout: 120_000 }), async (t) => {
  const runOne = async (i: number) => {
    const kind = kinds[i % kinds.length]!;
    const r = await runGuest(kind.options);
    if (r.outcome !== kind.outcome) assert.fail(`run ${i}: expected ${kind.outcome}, got ${r.outcome}: ${r.message}`);
  };
  for (let i = 0; i < WARM_UP; i++) await runOne(i);
  collect();
  const fdsBefore = openFds();
  const rssBefore = process.memoryUsage().rss;

  for (let i = WARM_UP; i < RUNS; i++) await runOne(i);
  collect();
  const fdsAfter = openFds();
  const rssAfter = process.memoryUsage().rss;

  assert.equal(fdsAfter, fdsBefore, `open file descriptors went from ${fdsBefore} to ${fdsAfter}`);
  const growth = rssAfter - rssBefore;
  t.diagnostic(`fds ${fdsBefore} -> ${fdsAfter}; RSS ${(rssBefore / 2 ** 20).toFixed(1)} -> ${(rssAfter / 2 ** 20).toFixed(1)} MiB`);
  assert.ok(
    growth < RSS_SLACK,
    `RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB over ${RUNS - WARM_UP} runs (limit ${RSS_SLACK / 2 ** 20} MiB)`,
  );
});

test(`${RUNS} runs of machines kept open keep open fds and memory outside the JS heap flat`, guestTest({ timeout: 120_000 }), async (t) => {
  // Runs this cheap allocate fast enough that V8 grows its young generation
  // (by up to tens of MiB, once): RSS less the JS heap is what a leak of
  // mappings or native memory would show in.
  const nativeRss = () => process.memoryUsage().rss - getHeapStatistics().total_heap_size;
  const machines = kinds.map((kind) => ({ machine: openMachine(kind.options), outcome: kind.outcome }));
  try {
    const runOne = async (i: number) => {
      const { machine, outcome } = machines[i % machines.length]!;
      const r = await machine.run();
      if (r.outcome !== outcome) assert.fail(`run ${i}: expected ${outcome}, got ${r.outcome}: ${r.message}`);
    };
    for (let i = 0; i < WARM_UP; i++) await runOne(i);
    collect();
    const fdsBefore = openFds();
    const rssBefore = nativeRss();

    for (let i = WARM_UP; i < RUNS; i++) await runOne(i);
    collect();
    const fdsAfter = openFds();
    const rssAfter = nativeRss();

    assert.equal(fdsAfter, fdsBefore, `open file descriptors went from ${fdsBefore} to ${fdsAfter}`);
    const growth = rssAfter - rssBefore;
    t.diagnostic(`fds ${fdsBefore} -> ${fdsAfter}; RSS outside the JS heap ${(rssBefore / 2 ** 20).toFixed(1)} -> ${(rssAfter / 2 ** 20).toFixed(1)} MiB`);
    assert.ok(
      growth < RSS_SLACK,
      `RSS outside the JS heap grew by ${(growth / 2 ** 20).toFixed(1)} MiB over ${RUNS - WARM_UP} runs (limit ${RSS_SLACK / 2 ** 20} MiB)`,
    );
  } finally {
    for (const { machine } of machines) machine.close();
  }
});
