// Mirror mode in test files: mirror(path).fn(name, ...args) as a guest,
// with every kind of TypeScript hardware, checks reading the Buffer the
// guest filled, and the mistakes a user can make. One run of
// fixtures/mirror.kvmtest.ts, with a shared object built here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import type { JsonTest } from '../../src/report/json.js';
import { CAN_BUILD, ROOT } from '../cli/helpers.js';
import { guestTest, isSoftwareKvm } from '../helpers/kvm.js';
import { compileShared } from '../helpers/toolchain.js';
import { assertPassed, fixture, resultOf, runJsonFile } from './helpers.js';
import { join } from 'node:path';

describe('test files: mirror()', () => {
  let byName = new Map<string, JsonTest>();

  before(async () => {
    if (!CAN_BUILD) return;
    const library = compileShared(readFileSync(join(ROOT, 'test', 'mirror', 'fixtures', 'mirrored.c'), 'utf8'), 'mirrored');
    ({ byName } = await runJsonFile([fixture('mirror.kvmtest.ts')], { env: { KVMTEST_MIRROR_LIBRARY: library } }));
  });

  test('a Buffer passed to fn() is filled by the guest; the check reads it and the return value', guestTest(), () => {
    assertPassed(byName, 'fills a Buffer the check reads');
  });

  test('ports (configured and served by callbacks), MSRs and MMIO served from TypeScript', guestTest(), () => {
    assertPassed(byName, 'a configured port');
    assertPassed(byName, 'a port served by callbacks');
    assertPassed(byName, 'an MSR served from TypeScript');
    assertPassed(byName, 'MMIO served from TypeScript');
  });

  test('a CPUID override (skipped, saying why, where this KVM ignores it)', guestTest(), () => {
    const result = resultOf(byName, 'a CPUID override');
    if (isSoftwareKvm() && result.status === 'skipped') assert.match(result.message ?? '', /CPUID/);
    else assertPassed(byName, 'a CPUID override');
  });

  test('shouldFault passes on the expected #PF; an unexpected one fails with the function and CR2', guestTest(), () => {
    assertPassed(byName, 'an unmapped address is the test\'s page fault');
    const failed = resultOf(byName, 'a fault not expected fails, naming the function and the address');
    assert.equal(failed.status, 'failed');
    assert.match(failed.message ?? '', /#PF \(page fault\) at deref .*at 0xbad0000/);
  });

  test('a system call fails, saying so', guestTest(), () => {
    const failed = resultOf(byName, 'a system call fails the test');
    assert.equal(failed.status, 'failed');
    assert.match(failed.message ?? '', /mirrored function make_syscall made a system call \(syscall at make_syscall\+0x/);
  });

  test('mistakes fail their own test with what to do', guestTest(), () => {
    const missing = resultOf(byName, 'a function the library does not have');
    assert.equal(missing.status, 'failed');
    assert.match(missing.message ?? '', /no function "no_such_function" in .*; its functions: /);
    const tooMany = resultOf(byName, 'too many arguments');
    assert.equal(tooMany.status, 'failed');
    assert.match(tooMany.message ?? '', /at most 6 register arguments/);
    const noFile = resultOf(byName, 'a library that does not exist');
    assert.equal(noFile.status, 'failed');
    assert.match(noFile.message ?? '', /cannot open the library does\/not\/exist\.so: no such file/);
  });
});
