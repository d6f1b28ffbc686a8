// Images kvmtest cannot run are refused with an error that says what is
// wrong: not ELF, empty, missing, 32-bit, another architecture, PIE, object
// files, truncated at any byte, bad entry points, and links into the first
// megabyte that the engine keeps for itself.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { runGuest, type RunGuestOptions } from '../../src/index.js';
import { loadImage } from '../../src/image/image.js';
import { guestTest, toolchainTest, toolchainUnavailableReason, IN_CI } from '../helpers/kvm.js';
import { assemble, assembleObject, tempPath } from '../helpers/toolchain.js';

const TINY = `
  .text
  .globl _start
_start:
  ret
  .data
  .quad 1
  .bss
  .skip 64
`;

const EM_AARCH64 = 183;
const E_MACHINE_OFFSET = 18;

let good: string;
let paths: {
  text: string; empty: string; missing: string; elf32: string; aarch64: string; pie: string; object: string;
  truncated: string; lowLink: string;
};

before(() => {
  if (!IN_CI && toolchainUnavailableReason()) return;
  good = assemble(TINY, { name: 'good' });
  const text = tempPath('notes.txt');
  writeFileSync(text, 'These are notes, not an executable.\n');
  const empty = tempPath('empty.elf');
  writeFileSync(empty, '');
  const aarch64 = tempPath('aarch64.elf');
  const patched = new Uint8Array(readFileSync(good));
  new DataView(patched.buffer).setUint16(E_MACHINE_OFFSET, EM_AARCH64, true);
  writeFileSync(aarch64, patched);
  const truncated = tempPath('truncated.elf');
  const whole = readFileSync(good);
  writeFileSync(truncated, whole.subarray(0, Math.floor(whole.length / 2)));
  paths = {
    text,
    empty,
    missing: tempPath('does-not-exist.elf'),
    elf32: assemble(TINY, { name: 'elf32', extraAsArgs: ['--32'], extraLdArgs: ['-m', 'elf_i386'] }),
    aarch64,
    pie: assemble(TINY, { name: 'pie', linkAddress: 0, extraLdArgs: ['-pie'] }),
    object: assembleObject(TINY, 'object'),
    truncated,
    lowLink: assemble(TINY, { name: 'low-link', linkAddress: 0x1000 }),
  };
});

/** runGuest must reject (not crash, not run) with an error of `name` whose message matches every pattern. */
async function assertRefused(options: RunGuestOptions, name: string, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(runGuest(options), (err: Error) => {
    assert.equal(err.name, name, `${err.name}: ${err.message}`);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

describe('files that are not runnable images', () => {
  // Refused while loading, before any VM exists: these need no /dev/kvm.
  test('a text file', toolchainTest(), async () => {
    await assertRefused({ image: { elf: paths.text } }, 'ElfError', /not an ELF file/, /starts with 54 68 65 73/, /notes\.txt/);
  });

  test('an empty file', toolchainTest(), async () => {
    await assertRefused({ image: { elf: paths.empty } }, 'ElfError', /not an ELF file/, /the file is empty/);
  });

  test('a missing file', toolchainTest(), async () => {
    await assertRefused({ image: { elf: paths.missing } }, 'ImageError', /cannot read ELF image/, /does-not-exist\.elf/, /ENOENT|no such file/i);
  });

  test('a 32-bit ELF', toolchainTest(), async () => {
    await assertRefused({ image: { elf: paths.elf32 } }, 'ElfError', /32-bit ELF/, /-m64/);
  });

  test('an ELF for another architecture (e_machine 183)', toolchainTest(), async () => {
    await assertRefused({ image: { elf: paths.aarch64 } }, 'ElfError', /AArch64/, /not x86-64/);
  });

  test('a position-independent executable (ET_DYN)', toolchainTest(), async () => {
    await assertRefused({ image: { elf: paths.pie } }, 'ElfError', /ET_DYN/, /position-independent/, /-no-pie/);
  });

  test('an object file (ET_REL)', toolchainTest(), async () => {
    await assertRefused({ image: { elf: paths.object } }, 'ElfError', /not an executable/, /link/);
  });

  test('a truncated ELF', toolchainTest(), async () => {
    await assertRefused({ image: { elf: paths.truncated } }, 'ElfError', /truncated/);
  });

  test('every truncation of an ELF is refused as truncated, never crashes', toolchainTest(), () => {
    const whole = readFileSync(good);
    for (let length = 4; length < whole.length; length++) {
      assert.throws(
        () => loadImage({ elfBytes: whole.subarray(0, length), name: `first ${length} bytes` }),
        (err: Error) => err.name === 'ElfError' && /truncated/.test(err.message),
        `the first ${length} of ${whole.length} bytes`,
      );
    }
  });

  test('an empty flat image', async () => {
    await assertRefused({ image: { flat: new Uint8Array(0), loadAddress: 0x100000 } }, 'ImageError', /flat image is empty/);
  });
});

describe('entry points that do not exist', () => {
  test('a symbol as the entry of a flat image', async () => {
    await assertRefused({ image: { flat: Uint8Array.of(0xc3), loadAddress: 0x100000 }, entry: 'main' }, 'ImageError', /"main"/, /flat image has no symbols/);
  });

  test('an entry symbol the ELF does not define', toolchainTest(), async () => {
    await assertRefused({ image: { elf: good }, entry: 'no_such_function' }, 'ImageError', /"no_such_function" is not defined/, /good\.elf/);
  });
});

describe('images in the reserved first megabyte', () => {
  test('an ELF linked at 0x1000 is refused: the first MiB is reserved', guestTest(), async () => {
    await assertRefused({ image: { elf: paths.lowLink } }, 'PlacementError', /first\s+megabyte/, /reserves/, /0x100000 or above/);
  });

  test('a flat image loaded at 0x8000 is refused the same way', guestTest(), async () => {
    await assertRefused({ image: { flat: Uint8Array.of(0xc3), loadAddress: 0x8000 } }, 'PlacementError', /first\s+megabyte/);
  });
});
