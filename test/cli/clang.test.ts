// kvmtest cc with clang: a -Werror build succeeds and prints nothing, its
// tests run, and -m32 is refused. Skipped with the reason where clang is not
// installed (CI installs it).
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { guestTest } from '../helpers/kvm.js';
import { clangSkipReason } from '../helpers/toolchain.js';
import { describeRun, FIXTURES, kvmtest, runJson, tempDir } from './helpers.js';

const reason = clangSkipReason();
const withClang = (extra: object = {}) => (reason ? { ...extra, skip: reason } : extra);

describe('kvmtest cc with clang', () => {
  const env = () => ({ ...process.env, CC: 'clang', KVMTEST_CACHE_DIR: mkdtempSync(join(tempDir(), 'clang-cache-')) });

  test('a -Wall -Werror build succeeds and prints nothing, and its tests run', guestTest(withClang()), async () => {
    const elf = join(tempDir(), 'clang-passing.elf');
    const built = await kvmtest(['cc', '-Wall', '-Wextra', '-Werror', '-o', elf, join(FIXTURES, 'passing.c')], { env: env() });
    assert.equal(built.status, 0, describeRun(built));
    assert.equal(built.stderr, '', 'nothing on stderr');
    assert.equal(built.stdout, '');
    const { result, report } = await runJson([elf]);
    assert.equal(result.status, 0, describeRun(result));
    assert.ok(report.tests.some((t) => t.status === 'passed'), describeRun(result));
    assert.ok(report.tests.every((t) => t.status !== 'failed'), describeRun(result));
  });

  test('-m32 is refused with a message that says why', withClang(), async () => {
    const built = await kvmtest(['cc', '-m32', '-o', join(tempDir(), 'clang-32.elf'), join(FIXTURES, 'passing.c')], { env: env() });
    assert.equal(built.status, 2, describeRun(built));
    assert.equal(built.stderr, 'kvmtest cc: -m32 builds 32-bit or 16-bit code, but kvmtest runs tests in 64-bit long mode and links them with its x86-64 runtime: remove it\n');
  });
});
