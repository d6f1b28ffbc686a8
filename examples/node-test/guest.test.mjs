// kvmtest from node:test: `node --test` runs this file. It builds guest.c
// with kvmtest's compiler wrapper (what `kvmtest cc` runs), then calls its
// functions in ring 0 with runGuest(), each in a fresh virtual machine, and
// also runs machine code made at run time (a flat binary, as a JIT makes).
// The last block runs them with openMachine() instead: one machine for the
// block's tests, put back as it was loaded before each run.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { compileTests, openMachine, runGuest } from 'kvmtest';

const dir = mkdtempSync(join(tmpdir(), 'kvmtest-node-test-'));
const elf = join(dir, 'guest.elf');

before(() => {
  const build = compileTests(['-o', elf, 'guest.c'], { cwd: fileURLToPath(new URL('.', import.meta.url)) });
  if (build.status !== 0) throw new Error(`kvmtest cc guest.c failed:\n${build.stderr}`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The guest function's return value; anything else fails the test with kvmtest's account of it. */
function returned(result) {
  assert.equal(result.outcome, 'returned', `${result.outcome}: ${result.message}${result.output ? `\n${result.output}` : ''}`);
  return result.regs.rax;
}

test('kbd_wait_ready: a ready controller with a byte waiting', async () => {
  const result = await runGuest({ image: { elf }, entry: 'kbd_wait_ready', ioports: { 0x64: 0x01 } });
  assert.equal(returned(result), 1n);
});

test('kbd_wait_ready: a controller that stays busy is a timeout, and kvmtest says where the guest was', async () => {
  // No timeoutMs: runGuest's default (1 s) stops the guest.
  const result = await runGuest({ image: { elf }, entry: 'kbd_wait_ready', ioports: { 0x64: 0x02 } });
  assert.equal(result.outcome, 'timeout');
  assert.match(result.message, /^timed out after 1000 ms; the guest was at kbd_wait_ready(\+0x[0-9a-f]+)? at guest\.c:\d+ \(0x[0-9a-f]+\)$/);
});

test('long_mode_active: rdmsr(IA32_EFER) in ring 0', async () => {
  assert.equal(returned(await runGuest({ image: { elf }, entry: 'long_mode_active' })), 1n);
});

test('checked_div: 42 / 5, and a kassert that fails comes back as a result', async () => {
  assert.equal(returned(await runGuest({ image: { elf }, entry: 'checked_div', args: [42, 5] })), 8n);

  const result = await runGuest({ image: { elf }, entry: 'checked_div', args: [42, 0] });
  assert.equal(result.outcome, 'assert-failed');
  assert.equal(result.assertion.expression, 'b != 0');
  assert.equal(result.assertion.message, 'checked_div(42, 0)');
});

/** Machine code for `return a * k + b` (a in rdi, b in rsi): imul rax, rdi, k; add rax, rsi; ret. */
function affine(k) {
  const code = Uint8Array.of(0x48, 0x69, 0xc7, 0, 0, 0, 0, 0x48, 0x01, 0xf0, 0xc3);
  new DataView(code.buffer).setInt32(3, k, true);
  return code;
}

test('machine code made at run time: a * k + b', async () => {
  const result = await runGuest({ image: { flat: affine(7), loadAddress: 0x200000 }, args: [6, 3] });
  assert.equal(returned(result), 45n);
});

// One machine for these tests, opened once: each run starts on it as a fresh
// runGuest would (memory, registers, MSRs as loaded), at a fraction of the cost.
describe('on one machine kept open (openMachine)', () => {
  let machine;
  before(() => {
    machine = openMachine({ image: { elf }, entry: 'checked_div' });
  });
  after(() => machine?.close());

  test('checked_div, run after run: a failed kassert leaves nothing behind', async () => {
    assert.equal(returned(await machine.run({ args: [42, 5] })), 8n);
    assert.equal((await machine.run({ args: [42, 0] })).outcome, 'assert-failed');
    assert.equal(returned(await machine.run({ args: [42, 6] })), 7n);
  });

  test('kbd_wait_ready: a port served by a function, for this run only', async () => {
    let reads = 0;
    // Busy twice, then ready with a byte waiting.
    const status = { read: () => (++reads < 3 ? 0x02 : 0x01) };
    assert.equal(returned(await machine.run({ entry: 'kbd_wait_ready', ports: { 0x64: status } })), 1n);
    assert.equal(reads, 4);
  });
});
