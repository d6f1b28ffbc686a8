// Mirror mode through the library API: functions of a shared object loaded
// into this process run in guest ring 0 with the process's memory at the
// same addresses (a Buffer passed in is filled in place), faults and system
// calls are reported with the function's name, and what one run changes in
// the CPU is gone for the next.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import { openMachine, OptionError, runGuest, type GuestResult } from '../../src/index.js';
import { guestTest, toolchainTest } from '../helpers/kvm.js';
import { compileShared, tempPath } from '../helpers/toolchain.js';
import { addressOf } from '../../src/kvm/libc.js';

const SOURCE = fileURLToPath(new URL('../../../test/mirror/fixtures/mirrored.c', import.meta.url));
const CR0_PG = 1n << 31n;
const PF = 14;

let library = '';

before(() => {
  if (guestTest().skip) return;
  library = compileShared(readFileSync(SOURCE, 'utf8'), 'mirrored');
});

const run = (entry: string, args: Array<bigint | number | ArrayBufferView> = []) => runGuest({ mirror: { library }, entry, args });

/** A run that this host's KVM could not emulate (PVM and SIMD code, such as glibc's): the test is skipped, saying so. */
function emulationFailure(result: GuestResult): string | undefined {
  return result.error?.kind === 'emulation-failure' ? `this host's KVM cannot run it: ${result.message}` : undefined;
}

describe('mirror mode', () => {
  test('a Buffer passed in is filled in ring 0, and the return value comes back', guestTest(), async () => {
    // In the middle of an allocation of its own, so that the 2 MiB around it
    // hold nothing the run maps ahead (a small Buffer can share them with
    // the library's memory, and then needs no first touch).
    const buffer = Buffer.alloc(6 << 20).subarray(3 << 20, (3 << 20) + 256);
    const result = await run('fill', [buffer, 200, 7]);
    assert.equal(result.outcome, 'returned', result.message);
    const expected = Buffer.from(Array.from({ length: 200 }, (_, i) => (7 + i) & 0xff));
    assert.deepEqual(buffer.subarray(0, 200), expected);
    assert.ok(buffer.subarray(200).every((b) => b === 0), 'bytes past n stay untouched');
    assert.equal(result.returnValue, BigInt(expected.reduce((a, b) => a + b, 0)));
    // The library is mapped before the run; the Buffer on first touch, through a page fault the guest never sees.
    assert.ok(result.mirror && result.mirror.faults >= 1, `the Buffer was mapped on first touch: ${JSON.stringify(result.mirror)}`);
  });

  test('the guest reads what the host wrote, through the same pointer', guestTest(), async () => {
    const bytes = new Uint8Array(1000).map((_, i) => i % 7);
    const result = await run('sum', [bytes, bytes.length]);
    assert.equal(result.returnValue, BigInt(bytes.reduce((a, b) => a + b, 0)));
  });

  test('a function that loads an IDT of its own still runs: the library is mapped before the run', guestTest(), async () => {
    const result = await run('own_idt_counter');
    assert.equal(result.outcome, 'returned', result.message);
    assert.equal(result.mirror?.faults, 0);
  });

  test('a hypercall reads process memory the guest has not touched (the host maps it too)', guestTest(), async () => {
    const text = Buffer.from('hello from a Buffer\n');
    const result = await run('print_bytes', [text, text.length]);
    assert.equal(result.outcome, 'returned', result.message);
    assert.equal(result.output, 'hello from a Buffer\n');
  });

  test('the guest runs in ring 0 with paging on: CR0 has PG', guestTest(), async () => {
    const result = await run('read_cr0');
    assert.equal(result.outcome, 'returned', result.message);
    assert.equal(result.returnValue! & CR0_PG, CR0_PG);
  });

  test('a write to the library\'s data is the process\'s: the host reads it', guestTest(), async () => {
    const getCounter = koffi.load(library).func('uint64_t get_counter(void)');
    const before = BigInt(getCounter());
    const result = await run('bump');
    assert.equal(result.returnValue, before + 1n);
    assert.equal(BigInt(getCounter()), before + 1n);
  });

  test('an unmapped address faults with #PF, the address (CR2) and the function', guestTest(), async () => {
    const result = await run('deref', [0xdead000n]);
    assert.equal(result.outcome, 'fault');
    assert.equal(result.fault?.vector, PF);
    assert.equal(result.fault?.cr2, 0xdead000n);
    assert.match(result.fault!.location, /^deref/);
    assert.match(result.message!, /#PF \(page fault\) at deref.*read from a not-present page .* at 0xdead000/);
  });

  test('a write to read-only memory of the process faults (the page is mapped read-only)', guestTest(), async () => {
    const address = (await run('read_only_address')).returnValue!;
    const result = await run('write_read_only');
    assert.equal(result.outcome, 'fault');
    assert.equal(result.fault?.vector, PF);
    assert.equal(result.fault?.cr2, address);
    assert.equal(result.fault!.errorCode! & 0x3, 0x3, 'present, write');
    assert.match(result.message!, /at write_read_only\+0x[0-9a-f]+ .*write to a page that does not allow it/);
  });

  test('a system call ends the run, naming the function', guestTest(), async () => {
    const result = await run('make_syscall');
    assert.equal(result.outcome, 'fault');
    assert.match(result.message!, /^mirrored function make_syscall made a system call \(syscall at make_syscall\+0x[0-9a-f]+ \(0x[0-9a-f]+\)\); mirrored code must not make system calls/);
  });

  test('int 0x80 and sysenter are system calls too', guestTest(), async () => {
    const int80 = await run('make_int80');
    // A fault at vector 0x80 on hardware KVM; an emulation failure where KVM cannot emulate int n (PVM).
    assert.ok(int80.outcome === 'fault' || int80.error?.kind === 'emulation-failure', int80.message);
    assert.match(int80.message!, /^mirrored function make_int80 made a system call \(int 0x80 at make_int80\+0x[0-9a-f]+ /);
    const sysenter = await run('make_sysenter');
    assert.ok(sysenter.outcome === 'fault' || sysenter.error?.kind === 'emulation-failure', sysenter.message);
    assert.match(sysenter.message!, /^mirrored function make_sysenter made a system call \(sysenter at make_sysenter /);
  });

  test('a function that never returns times out, saying where it was; the next run is fine', guestTest(), async () => {
    const machine = openMachine({ mirror: { library }, entry: 'spin', timeoutMs: 100 });
    try {
      const spun = await machine.run();
      assert.equal(spun.outcome, 'timeout');
      assert.match(spun.message!, /^timed out after 100 ms; the guest was at spin\+?/);
      const after = await machine.run({ entry: 'read_cr0' });
      assert.equal(after.outcome, 'returned', after.message);
    } finally {
      machine.close();
    }
  });

  test('the FS base is the host thread\'s: the stack protector\'s canary reads the same', guestTest(), async () => {
    const hostCanary = BigInt(koffi.load(library).func('uint64_t canary(void)')());
    assert.equal((await run('canary')).returnValue, hostCanary);
  });

  test('addresses outside the library are named by the file they are in', guestTest(), async () => {
    const result = await run('libc_strlen', [0]);
    // glibc's strlen faults on the null pointer, or (PVM) cannot be emulated: either way in libc.
    assert.ok(result.outcome === 'fault' || result.error?.kind === 'emulation-failure', result.message);
    assert.match(result.message!, /libc\.so\.6\+0x[0-9a-f]+ \(0x[0-9a-f]+\)/);
  });

  test('libc\'s memcpy copies, or is skipped where this KVM cannot run its SIMD code', guestTest(), async (t) => {
    const from = Buffer.alloc(300, 0xab);
    const to = Buffer.alloc(300);
    const result = await run('copy_with_libc', [to, from, 300]);
    const skip = emulationFailure(result);
    if (skip) return t.skip(skip);
    assert.equal(result.outcome, 'returned', result.message);
    assert.deepEqual(to, from);
  });

  test('each run on a kept machine maps what it touches afresh, and sees none of the last run\'s CPU state', guestTest(), async () => {
    const machine = openMachine({ mirror: { library }, entry: 'state_left' });
    try {
      const canary = (await machine.run({ entry: 'canary' })).returnValue;
      assert.equal((await machine.run()).returnValue, 0n);
      const dirty = await machine.run({ entry: 'dirty_state' });
      assert.equal(dirty.outcome, 'returned', dirty.message);
      const after = await machine.run();
      assert.equal(after.outcome, 'returned', after.message);
      assert.equal(after.returnValue, 0n, `left behind: 0x${after.returnValue?.toString(16)}`);
      assert.ok(after.mirror!.pagesMapped > 0, 'the code was mapped again');
      assert.equal((await machine.run({ entry: 'canary' })).returnValue, canary, 'FS base back to the host thread\'s');
    } finally {
      machine.close();
    }
  });
});

describe('mirror mode: guest RAM over the process\'s memory', () => {
  const CHUNK = 2n << 20n;

  test('a RAM range keeps its addresses: the process\'s memory there is hidden, the guest writes its own RAM', guestTest(), async () => {
    const buffer = Buffer.alloc(64);
    const at = addressOf(buffer);
    const ram: Array<[bigint, bigint]> = [[at & ~(CHUNK - 1n), (at & ~(CHUNK - 1n)) + 2n * CHUNK]];
    // The address as an integer: the guest fills its RAM there, not the Buffer.
    const result = await runGuest({ mirror: { library }, entry: 'fill', args: [at, 64, 9], ram });
    assert.equal(result.outcome, 'returned', result.message);
    assert.ok(buffer.every((b) => b === 0), 'the process\'s memory under the RAM range is untouched');
  });

  test('a Buffer argument inside a RAM range is refused (the guest would see its RAM there)', guestTest(), async () => {
    const buffer = Buffer.alloc(64);
    const at = addressOf(buffer);
    const ram: Array<[bigint, bigint]> = [[at & ~(CHUNK - 1n), (at & ~(CHUNK - 1n)) + 2n * CHUNK]];
    await assert.rejects(runGuest({ mirror: { library }, entry: 'fill', args: [buffer, 64, 9], ram }), (err: Error) => {
      assert.equal(err.name, 'PlacementError');
      assert.match(err.message, /an argument's Buffer at \[0x[0-9a-f]+, 0x[0-9a-f]+\) lies in ram\[0\] .* where the guest sees its own RAM or device, not the process's memory/);
      return true;
    });
  });
});

describe('mirror mode: mistakes', () => {
  const refuses = async (options: Parameters<typeof runGuest>[0], pattern: RegExp) => {
    await assert.rejects(runGuest(options), (err: Error) => {
      assert.ok(err instanceof OptionError, `${err.name}: ${err.message}`);
      assert.match(err.message, pattern);
      return true;
    });
  };

  test('a path that does not exist', toolchainTest(), async () => {
    await refuses({ mirror: { library: '/no/such/lib.so' }, entry: 'f' }, /cannot open the library \/no\/such\/lib\.so: no such file/);
  });

  test('a function the library does not have, listing what it has', guestTest(), async () => {
    await refuses({ mirror: { library }, entry: 'fil' }, /no function "fil" in .*; its functions: .*fill/);
  });

  test('more than six arguments', guestTest(), async () => {
    await refuses({ mirror: { library }, entry: 'fill', args: [1, 2, 3, 4, 5, 6, 7] }, /at most 6 register arguments/);
  });

  test('no entry', guestTest(), async () => {
    await refuses({ mirror: { library } }, /entry names the function/);
  });

  test('image and mirror together', guestTest(), async () => {
    await refuses({ mirror: { library }, entry: 'fill', image: { elf: library } }, /give image or mirror, not both/);
  });

  test('a file that is not a shared object', toolchainTest(), async () => {
    const text = tempPath('not-a-library.so');
    writeFileSync(text, 'hello\n');
    await refuses({ mirror: { library: text }, entry: 'f' }, /not an ELF file/);
  });

  test('a library the dynamic loader refuses (a dependency is missing)', toolchainTest(), async () => {
    const dependency = compileShared('int gone(void) { return 1; }\n', 'gone');
    const needing = compileShared('int gone(void);\nint call(void) { return gone(); }\n', 'needs', [dependency]);
    rmSync(dependency);
    await refuses({ mirror: { library: needing }, entry: 'call' }, /the dynamic loader refused .*needs\.so: .*\(a library it needs may be missing/);
  });

  test('a Buffer argument to an image\'s guest', toolchainTest(), async () => {
    await refuses({ image: { flat: new Uint8Array([0xc3]), loadAddress: 0x200000 }, args: [Buffer.alloc(4)] }, /args\[0\] is a Buffer: only mirrored code/);
  });
});
