// `kvmtest cc`: the compiler it runs, the flags it adds, what it checks
// before running anything, and how a compiler failure comes back.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadTestTable } from '../../src/image/test-table.js';
import { compileTests, sdkPaths, ToolchainError, toolchainFlags } from '../../src/image/toolchain.js';
import { toolchainTest } from '../helpers/kvm.js';
import { buildDir, FIXTURES } from './sdk-helpers.js';

/** An environment with a cache of compiled runtimes of its own, empty: the runtime is compiled. */
function uncached(extra: NodeJS.ProcessEnv = {}): { env: NodeJS.ProcessEnv } {
  return { env: { ...process.env, ...extra, KVMTEST_CACHE_DIR: mkdtempSync(join(buildDir(), 'cache-')) } };
}

function source(name: string, text: string): string {
  const path = join(buildDir(), name);
  writeFileSync(path, text);
  return path;
}

describe('sdkPaths', () => {
  test('points at the SDK in the package', () => {
    const paths = sdkPaths();
    for (const path of [paths.include, paths.linkerScript, paths.higherHalfLinkerScript, ...paths.runtimeSources]) {
      assert.ok(existsSync(path), path);
    }
    assert.ok(existsSync(join(paths.include, 'kvmtest.h')));
    assert.ok(existsSync(join(paths.include, 'kvmtest', 'x86.h')));
    assert.ok(existsSync(join(paths.include, 'kvmtest', 'abi.h')));
    assert.ok(paths.runtimeSources.some((p) => p.endsWith('ktry.S')));
  });
});

describe('toolchainFlags', () => {
  test('general registers only, except user code with --allow-simd; kernel code model for --higher-half', () => {
    const plain = toolchainFlags({ higherHalf: false, allowSimd: false });
    assert.ok(plain.runtime.includes('-mgeneral-regs-only'));
    assert.ok(plain.user.includes('-mgeneral-regs-only'));
    assert.ok(!plain.user.includes('-mcmodel=kernel'));
    const simd = toolchainFlags({ higherHalf: true, allowSimd: true });
    assert.ok(simd.runtime.includes('-mgeneral-regs-only'));
    assert.ok(!simd.user.includes('-mgeneral-regs-only'));
    assert.ok(simd.runtime.includes('-mcmodel=kernel') && simd.user.includes('-mcmodel=kernel'));
    for (const flag of ['-ffreestanding', '-fno-pic', '-fno-stack-protector', '-mno-red-zone', '-fno-asynchronous-unwind-tables']) {
      assert.ok(plain.user.includes(flag) && plain.runtime.includes(flag), flag);
    }
    for (const flag of ['-static', '-nostdlib']) assert.ok(plain.link.includes(flag), flag);
    assert.ok(!plain.link.includes('-no-pie'), '-static alone makes a non-PIE executable, and clang warns of an unused -no-pie');
  });
});

describe('compileTests', toolchainTest(), () => {
  test('builds a test binary; user flags come after ours and never reach the runtime', () => {
    const out = join(buildDir(), 'plain.elf');
    const result = compileTests(['-O1', '-DKT_EXTRA=1', '-o', out, join(FIXTURES, 'multi-a.c')], uncached());
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.equal(result.commands.length, 2);
    const [runtime, link] = result.commands;
    assert.ok(!runtime!.includes('-O1') && !runtime!.includes('-DKT_EXTRA=1'));
    assert.ok(link!.indexOf('-O1') > link!.indexOf('-O2'));
    assert.deepEqual(loadTestTable(out).map((t) => t.name), ['alpha_first', 'alpha_second']);
  });

  test('links with kvmtest.ld, kvmtest-higher-half.ld with --higher-half, or a -T script of the user', () => {
    const file = join(FIXTURES, 'multi-a.c');
    const low = compileTests(['-o', join(buildDir(), 'low.elf'), file], uncached());
    assert.ok(low.commands[1]!.includes(sdkPaths().linkerScript));
    const high = compileTests(['--higher-half', '-o', join(buildDir(), 'high.elf'), file], uncached());
    assert.ok(high.commands[1]!.includes(sdkPaths().higherHalfLinkerScript));
    assert.ok(high.commands[0]!.includes('-mcmodel=kernel'));
    const script = source('own.ld', readFileSync(sdkPaths().linkerScript, 'utf8').replace('. = 0x200000;', '. = 0x400000;'));
    const own = compileTests(['-T', script, '-o', join(buildDir(), 'own.elf'), file], uncached());
    assert.equal(own.status, 0, own.stderr);
    assert.equal(own.commands[1]!.filter((a) => a === '-T').length, 1);
    assert.equal(loadTestTable(join(buildDir(), 'own.elf'))[0]!.fn >> 20n, 0x4n);
  });

  test('the headers are clean under -Wall -Wextra -pedantic -Werror in C99 and C11', () => {
    for (const std of ['c99', 'c11']) {
      const out = join(buildDir(), `strict-${std}.elf`);
      const result = compileTests([`-std=${std}`, '-Wall', '-Wextra', '-pedantic', '-Werror', '-o', out, join(FIXTURES, 'checks.c')]);
      assert.equal(result.status, 0, result.stderr);
    }
  });

  test('the runtime stays on general-purpose registers even with --allow-simd and -mavx2', () => {
    const out = join(buildDir(), 'simd-user.elf');
    const result = compileTests(['--allow-simd', '-O3', '-mavx2', '-o', out, join(FIXTURES, 'format.c')]);
    assert.equal(result.status, 0, result.stderr);
    const listing = execFileSync('objdump', ['-d', '--no-show-raw-insn', out], { encoding: 'utf8' });
    const functions = new Map<string, string>();
    for (const block of listing.split(/\n(?=[0-9a-f]+ <)/)) {
      const name = /^[0-9a-f]+ <([^>]+)>:/.exec(block)?.[1];
      if (name) functions.set(name, block);
    }
    const runtime = ['kt_format', 'kvsnprintf', 'sprint', 'sprintln', 'kt_panic', 'kt_assert_failed_msg', 'kvmtest_entry', 'ktry', 'memset', 'memcpy'];
    for (const name of runtime) {
      const body = functions.get(name);
      assert.ok(body, `${name} is not in the binary`);
      assert.doesNotMatch(body, /%[xyz]mm|%st|%mm/, `${name} uses SIMD or x87 registers:\n${body}`);
    }
  });

  test('--allow-simd lets user code use floating point; without it the compiler refuses', () => {
    const file = source('float.c', '#include <kvmtest.h>\nstatic volatile double x = 1.5;\nKVMTEST(uses_float) { kassert(x * 2 == 3.0); }\n');
    const refused = compileTests(['-o', join(buildDir(), 'float.elf'), file]);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /SSE|x87|general/i);
    const allowed = compileTests(['--allow-simd', '-o', join(buildDir(), 'float.elf'), file]);
    assert.equal(allowed.status, 0, allowed.stderr);
  });

  test('-c only compiles, with our flags and include path', () => {
    const out = join(buildDir(), 'one.o');
    const result = compileTests(['-c', '-o', out, join(FIXTURES, 'multi-b.c')]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.commands.length, 1);
    assert.ok(result.commands[0]!.includes('-mgeneral-regs-only'));
    assert.ok(existsSync(out));
    const linked = join(buildDir(), 'from-objects.elf');
    assert.equal(compileTests(['-o', linked, out]).status, 0);
    assert.equal(loadTestTable(linked).length, 3);
  });

  test('a compiler error comes back as status and stderr', () => {
    const file = source('broken.c', '#include <kvmtest.h>\nKVMTEST(broken) { this is not C; }\n');
    const result = compileTests(['-o', join(buildDir(), 'broken.elf'), file]);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /broken\.c:2/);
    assert.match(result.stderr, /error/);
  });

  test('no sources, no -o, no compiler', () => {
    assert.throws(() => compileTests(['-o', 'x.elf']), (err: unknown) => err instanceof ToolchainError && /no source files/.test(err.message));
    assert.throws(() => compileTests([join(FIXTURES, 'multi-a.c')]), (err: unknown) => err instanceof ToolchainError && /no output file: give one with -o/.test(err.message));
    const env = { ...process.env, CC: '/nonexistent/kvmtest-cc' };
    assert.throws(
      () => compileTests(['-o', join(buildDir(), 'x.elf'), join(FIXTURES, 'multi-a.c')], { env }),
      (err: unknown) =>
        err instanceof ToolchainError &&
        err.message.startsWith('no C compiler found: kvmtest cc runs $CC, or cc; install gcc or clang, or set CC') &&
        err.message.includes('/nonexistent/kvmtest-cc'),
    );
  });

  test('$CC may carry its own arguments', () => {
    const out = join(buildDir(), 'cc-args.elf');
    const result = compileTests(['-o', out, join(FIXTURES, 'multi-a.c')], uncached({ CC: 'cc -DFROM_CC=1' }));
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.commands[1]![1], '-DFROM_CC=1');
  });
});

describe('the runtime cache', toolchainTest(), () => {
  test('the runtime is compiled once per compiler and flags, then reused', () => {
    const options = uncached();
    const file = join(FIXTURES, 'multi-a.c');
    const first = compileTests(['-o', join(buildDir(), 'cache-1.elf'), file], options);
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.commands.length, 2, 'runtime, then link');
    const second = compileTests(['-o', join(buildDir(), 'cache-2.elf'), file], options);
    assert.equal(second.status, 0, second.stderr);
    assert.equal(second.commands.length, 1, 'link only: the runtime came from the cache');
    assert.deepEqual(loadTestTable(join(buildDir(), 'cache-2.elf')).map((t) => t.name), ['alpha_first', 'alpha_second']);
    const higherHalf = compileTests(['--higher-half', '-o', join(buildDir(), 'cache-3.elf'), file], options);
    assert.equal(higherHalf.commands.length, 2, 'other flags, another runtime build');
    assert.equal(readdirSync(join(options.env.KVMTEST_CACHE_DIR!, 'runtime')).length, 2);
  });

  test('a cache that cannot be written is not used, and the build still works', () => {
    // Under a regular file, no directory can be made (ENOTDIR), not even by root.
    const env = { ...process.env, KVMTEST_CACHE_DIR: join(source('not-a-directory', ''), 'cache') };
    const result = compileTests(['-o', join(buildDir(), 'no-cache.elf'), join(FIXTURES, 'multi-a.c')], { env });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, '');
  });
});

describe('what kvmtest cc refuses', () => {
  for (const args of [['-m32'], ['-mx32'], ['-m16'], ['--target=aarch64-linux-gnu'], ['-target', 'i686-linux-gnu']]) {
    test(`${args.join(' ')}: code for another mode or target`, () => {
      assert.throws(
        () => compileTests([...args, '-o', join(buildDir(), 'wrong.elf'), join(FIXTURES, 'multi-a.c')]),
        (err: unknown) => err instanceof ToolchainError && /runs tests in 64-bit long mode/.test(err.message) && err.message.startsWith(args.join(' ')),
      );
    });
  }
});
