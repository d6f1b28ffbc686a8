// kvmtest from Vitest: `npx vitest run` in this directory runs this file,
// with vitest.config.mjs beside it (pool: 'forks'). It builds guest.c with
// kvmtest's compiler wrapper (what `kvmtest cc` runs), then calls its
// functions in ring 0 with runGuest(), each in a fresh virtual machine, and
// also runs machine code made at run time (a flat binary, as a JIT makes).
// The last block runs them with openMachine() instead: one machine for the
// block's tests, put back as it was loaded before each run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { compileTests, openMachine, runGuest } from 'kvmtest';

const dir = mkdtempSync(join(tmpdir(), 'kvmtest-vitest-'));
const elf = join(dir, 'guest.elf');

beforeAll(() => {
  const build = compileTests(['-o', elf, 'guest.c'], { cwd: fileURLToPath(new URL('.', import.meta.url)) });
  if (build.status !== 0) throw new Error(`kvmtest cc guest.c failed:\n${build.stderr}`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The guest function's return value; anything else fails the test with kvmtest's account of it. */
function returned(result) {
  expect(result.outcome, `${result.message}${result.output ? `\n${result.output}` : ''}`).toBe('returned');
  return result.regs.rax;
}

describe('kbd_wait_ready', () => {
  test('a ready controller with a byte waiting', async () => {
    const result = await runGuest({ image: { elf }, entry: 'kbd_wait_ready', ioports: { 0x64: 0x01 } });
    expect(returned(result)).toBe(1n);
  });

  test('a controller that stays busy is a timeout, and kvmtest says where the guest was', async () => {
    // No timeoutMs: runGuest's default (1 s) stops the guest well before
    // Vitest's test timeout (5 s) would, and the result says where it was.
    const result = await runGuest({ image: { elf }, entry: 'kbd_wait_ready', ioports: { 0x64: 0x02 } });
    expect(result.outcome).toBe('timeout');
    expect(result.message).toMatch(/^timed out after 1000 ms; the guest was at kbd_wait_ready(\+0x[0-9a-f]+)? at guest\.c:\d+ \(0x[0-9a-f]+\)$/);
  });
});

test('long_mode_active: rdmsr(IA32_EFER) in ring 0', async () => {
  expect(returned(await runGuest({ image: { elf }, entry: 'long_mode_active' }))).toBe(1n);
});

test('checked_div: 42 / 5, and a kassert that fails comes back as a result', async () => {
  expect(returned(await runGuest({ image: { elf }, entry: 'checked_div', args: [42, 5] }))).toBe(8n);

  const result = await runGuest({ image: { elf }, entry: 'checked_div', args: [42, 0] });
  expect(result.outcome).toBe('assert-failed');
  expect(result.assertion).toMatchObject({ expression: 'b != 0', message: 'checked_div(42, 0)' });
});

/** Machine code for `return a * k + b` (a in rdi, b in rsi): imul rax, rdi, k; add rax, rsi; ret. */
function affine(k) {
  const code = Uint8Array.of(0x48, 0x69, 0xc7, 0, 0, 0, 0, 0x48, 0x01, 0xf0, 0xc3);
  new DataView(code.buffer).setInt32(3, k, true);
  return code;
}

test('machine code made at run time: a * k + b', async () => {
  const result = await runGuest({ image: { flat: affine(7), loadAddress: 0x200000 }, args: [6, 3] });
  expect(returned(result)).toBe(45n);
});

// One machine for these tests, opened once: each run starts on it as a fresh
// runGuest would (memory, registers, MSRs as loaded), at a fraction of the cost.
describe('on one machine kept open (openMachine)', () => {
  let machine;
  beforeAll(() => {
    machine = openMachine({ image: { elf }, entry: 'checked_div' });
  });
  afterAll(() => machine?.close());

  test('checked_div, run after run: a failed kassert leaves nothing behind', async () => {
    expect(returned(await machine.run({ args: [42, 5] }))).toBe(8n);
    expect((await machine.run({ args: [42, 0] })).outcome).toBe('assert-failed');
    expect(returned(await machine.run({ args: [42, 6] }))).toBe(7n);
  });

  test('kbd_wait_ready: a port served by a function, for this run only', async () => {
    let reads = 0;
    // Busy twice, then ready with a byte waiting.
    const status = { read: () => (++reads < 3 ? 0x02 : 0x01) };
    expect(returned(await machine.run({ entry: 'kbd_wait_ready', ports: { 0x64: status } }))).toBe(1n);
    expect(reads).toBe(4);
  });
});
