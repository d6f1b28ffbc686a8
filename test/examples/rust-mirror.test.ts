// examples/rust-mirror: npm start's build step (cargo, offline) makes a
// no_std cdylib that exports its extern "C" functions, needs nothing from
// the loader, holds no SSE instruction, and whose functions Node can call
// through koffi (those that do no port I/O) and that run in guest ring 0 in
// mirror mode (all of them). Skipped where cargo is missing.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import koffi from 'koffi';
import { readSharedObject } from '../../src/image/shared-object.js';
import { runGuest } from '../../src/index.js';
import { guestTest } from '../helpers/kvm.js';
import { describeRun, ROOT, runCommand } from '../cli/helpers.js';

const BUILD = join(ROOT, 'examples', 'rust-mirror', 'build.mjs');
const SO = join(ROOT, 'build', 'rust-mirror.so');
const FUNCTIONS = ['rust_fill', 'rust_inb', 'rust_outb', 'rust_read_port_into', 'rust_sum_words'];

function cargoMissing(): string | undefined {
  const probe = spawnSync('cargo', ['--version'], { stdio: 'ignore' });
  return probe.error || probe.status !== 0 ? 'cargo is not installed (https://rustup.rs)' : undefined;
}

const skip = cargoMissing();

describe('the Rust mirror-mode example', () => {
  before(async () => {
    if (skip) return;
    const built = await runCommand(process.execPath, [BUILD]);
    assert.equal(built.status, 0, describeRun(built));
    assert.equal(built.stdout, 'built build/rust-mirror.so (examples/rust-mirror)\n');
  });

  test('without cargo, the build step says why it skips the example and succeeds', async () => {
    const built = await runCommand(process.execPath, [BUILD], { env: { ...process.env, CARGO: 'kvmtest-no-such-cargo' } });
    assert.equal(built.status, 0, describeRun(built));
    assert.equal(built.stdout, 'skipping examples/rust-mirror (the Rust mirror-mode example): kvmtest-no-such-cargo is not installed (https://rustup.rs)\n');
  });

  test('exports its functions, needs no library and leaves no symbol undefined', { skip }, () => {
    const exported = execFileSync('nm', ['-D', '--defined-only', SO], { encoding: 'utf8' });
    for (const name of FUNCTIONS) assert.match(exported, new RegExp(` T ${name}$`, 'm'));
    assert.equal(execFileSync('nm', ['-D', '--undefined-only', SO], { encoding: 'utf8' }), '');
    assert.doesNotMatch(execFileSync('readelf', ['-d', SO], { encoding: 'utf8' }), /NEEDED|TEXTREL/);
    const shared = readSharedObject(SO);
    assert.deepEqual(shared.tests, [], 'no test table: mirror mode calls the functions by name');
    assert.equal(shared.entry, undefined);
    assert.deepEqual(FUNCTIONS.filter((f) => !shared.exports.has(f)), []);
  });

  test('holds no SSE, AVX or x87 instruction (PVM cannot emulate them)', { skip }, () => {
    const code = execFileSync('objdump', ['-d', '--no-show-raw-insn', SO], { encoding: 'utf8' });
    const simd = code.split('\n').filter((line) => /%[xyz]mm\d|\bf(ld|st|add|mul)|\bmovdq|\bpxor/.test(line));
    assert.deepEqual(simd, []);
    assert.match(code, /\bout\s+%al,\(%dx\)/, 'rust_outb is an out instruction');
  });

  test('its functions run in guest ring 0 in mirror mode: a Buffer filled, ports served from TypeScript', guestTest({ skip }), async () => {
    const buf = Buffer.alloc(6);
    const filled = await runGuest({ mirror: { library: SO }, entry: 'rust_fill', args: [buf, 6, 254] });
    assert.equal(filled.outcome, 'returned', filled.message);
    assert.equal(filled.returnValue, 254n + 255n + 0n + 1n + 2n + 3n);
    assert.deepEqual([...buf], [254, 255, 0, 1, 2, 3]);
    let next = 0x40;
    const into = Buffer.alloc(4);
    const read = await runGuest({ mirror: { library: SO }, entry: 'rust_read_port_into', args: [0x60, into, 4], ports: { 0x60: { read: () => next++ } } });
    assert.equal(read.outcome, 'returned', read.message);
    assert.equal(read.returnValue, 4n);
    assert.deepEqual([...into], [0x40, 0x41, 0x42, 0x43]);
  });

  test('Node calls its memory functions through koffi', { skip }, () => {
    const lib = koffi.load(SO);
    try {
      const fill = lib.func('uint64_t rust_fill(_Out_ uint8_t *buf, size_t len, uint8_t start)');
      const buf = Buffer.alloc(6);
      assert.equal(BigInt(fill(buf, 6, 254)), 254n + 255n + 0n + 1n + 2n + 3n);
      assert.deepEqual([...buf], [254, 255, 0, 1, 2, 3]);
      const sum = lib.func('uint64_t rust_sum_words(const uint32_t *words, size_t len)');
      assert.equal(BigInt(sum(new Uint32Array([1, 2, 0xffffffff]), 3)), 0x100000002n);
    } finally {
      lib.unload();
    }
  });
});
