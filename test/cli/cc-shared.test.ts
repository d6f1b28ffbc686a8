// `kvmtest cc -shared`: a shared object for mirror mode, built with gcc and
// with clang, that a process with libc can dlopen (from C and from Node
// through koffi), exporting kvmtest_entry and the user's functions but none
// of the runtime's; flags that contradict -shared are refused.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import koffi from 'koffi';
import { toolchainTest } from '../helpers/kvm.js';
import { clangSkipReason, symbolTable } from '../helpers/toolchain.js';
import { CAN_BUILD, describeRun, FIXTURES, kvmtest, tempDir } from './helpers.js';

const COMPILERS = [
  { cc: 'gcc', skip: undefined },
  { cc: 'clang', skip: clangSkipReason() },
] as const;

const nm = symbolTable;

function readelf(args: string[], path: string): string {
  return execFileSync('readelf', ['-W', ...args, path], { encoding: 'utf8' });
}

/**
 * A host program that dlopens the object, finds its load base, and for each
 * record address given (link-time) prints the relocated fn and name as the
 * loader left them, then enters the first test through kvmtest_entry.
 */
const HOST_PROGRAM = `
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "dlopen: %s\\n", dlerror()); return 1; }
    struct link_map *map;
    if (dlinfo(lib, RTLD_DI_LINKMAP, &map) != 0) return 1;
    uintptr_t base = map->l_addr;
    void (*entry)(void *, void *) = (void (*)(void *, void *))dlsym(lib, "kvmtest_entry");
    int *counter = dlsym(lib, "shared_counter");
    if (!entry || !counter) { fprintf(stderr, "dlsym failed\\n"); return 1; }
    printf("entry %lx\\n", (unsigned long)((uintptr_t)entry - base));
    printf("memcpy %s\\n", dlsym(lib, "memcpy") == dlsym(RTLD_DEFAULT, "memcpy") ? "libc" : "other");
    for (int i = 2; i < argc; i++) {
        uintptr_t record = base + strtoull(argv[i], 0, 0);
        uintptr_t fn = *(uintptr_t *)(record + 16);
        const char *name = *(const char **)(record + 8);
        printf("record %s fn %lx name %s\\n", argv[i], (unsigned long)(fn - base), name);
    }
    uintptr_t first = base + strtoull(argv[2], 0, 0);
    entry(*(void **)(first + 16), (void *)first);
    printf("counter %d\\n", *counter);
    return 0;
}
`;

let hostProgram: string | undefined;
function buildHostProgram(): string {
  if (hostProgram) return hostProgram;
  const dir = mkdtempSync(join(tempDir(), 'host-'));
  writeFileSync(join(dir, 'host.c'), HOST_PROGRAM);
  execFileSync('gcc', ['-O1', '-o', join(dir, 'host'), join(dir, 'host.c')], { stdio: ['ignore', 'ignore', 'pipe'] });
  return (hostProgram = join(dir, 'host'));
}

for (const { cc, skip } of COMPILERS) {
  describe(`kvmtest cc -shared with ${cc}`, () => {
    const env = () => ({ ...process.env, CC: cc });
    let so = '';

    before(async () => {
      if (!CAN_BUILD || skip) return;
      so = join(tempDir(), `shared-${cc}.so`);
      const built = await kvmtest(['cc', '-shared', '-Wall', '-Wextra', '-Werror', '-o', so, join(FIXTURES, 'shared.c')], { env: env() });
      assert.equal(built.status, 0, describeRun(built));
      assert.equal(built.stderr, '', 'a -Werror build prints nothing');
    });

    test('builds an ET_DYN with a .kvmtest section, no interpreter, no libc and no text relocations', toolchainTest({ skip }), () => {
      assert.match(readelf(['-h'], so), /Type:\s+DYN \(Shared object file\)/);
      assert.match(readelf(['-S'], so), /\.kvmtest\s+PROGBITS/);
      const dynamic = readelf(['-d'], so);
      assert.doesNotMatch(dynamic, /NEEDED|TEXTREL/, dynamic);
      assert.match(dynamic, /BIND_NOW/, 'nothing is bound lazily');
      assert.doesNotMatch(readelf(['-l'], so), /INTERP/);
    });

    test('holds no SSE, AVX or x87 instruction (PVM cannot emulate them)', toolchainTest({ skip }), () => {
      const code = execFileSync('objdump', ['-d', '--no-show-raw-insn', so], { encoding: 'utf8' });
      assert.deepEqual(code.split('\n').filter((line) => /%[xyz]mm\d|\bf(ld|st|add|mul)\b|\bpxor\b/.test(line)), []);
    });

    test('exports kvmtest_entry and the user\'s functions, and none of the runtime\'s', toolchainTest({ skip }), () => {
      const exported = nm(so, true);
      for (const name of ['kvmtest_entry', 'shared_bump', 'shared_copy', 'shared_counter']) assert.ok(exported.has(name), `${name} is exported`);
      for (const name of ['memcpy', 'memset', 'strlen', 'ktry', 'sprint', 'kt_panic', '_start', 'kt_last_fault']) {
        assert.ok(!exported.has(name), `${name} is not exported`);
      }
      const undefinedSymbols = execFileSync('nm', ['-D', '--undefined-only', so], { encoding: 'utf8' });
      assert.equal(undefinedSymbols, '', 'nothing is left for the loader to find elsewhere');
    });

    test('a C program dlopens it: the loader relocates the records to the functions nm names, and kvmtest_entry runs a test', toolchainTest({ skip }), () => {
      const symbols = nm(so, false);
      const record = symbols.get('kt_record_bumps_the_counter')!;
      const out = execFileSync(buildHostProgram(), [so, `0x${record.toString(16)}`], { encoding: 'utf8' });
      assert.deepEqual(out.trim().split('\n'), [
        `entry ${symbols.get('kvmtest_entry')!.toString(16)}`,
        'memcpy other',
        `record 0x${record.toString(16)} fn ${symbols.get('kt_test_bumps_the_counter')!.toString(16)} name bumps_the_counter`,
        'counter 2',
      ]);
    });

    test('Node loads it with koffi: kvmtest_entry and the exported functions resolve and run', toolchainTest({ skip }), () => {
      const lib = koffi.load(so);
      try {
        const symbols = nm(so, false);
        const entry = lib.func('void kvmtest_entry(void *fn, void *record)');
        const base = koffi.address(lib.symbol('kvmtest_entry')) - symbols.get('kvmtest_entry')!;
        assert.equal(base % 4096n, 0n, 'the load base is page-aligned');
        const counter = lib.symbol('shared_counter');
        assert.equal(koffi.decode(counter, 'int'), 0);
        const at = (name: string) => koffi.as(base + symbols.get(name)!, 'void *');
        entry(at('kt_test_bumps_the_counter'), at('kt_record_bumps_the_counter'));
        assert.equal(koffi.decode(counter, 'int'), 2);

        const copy = lib.func('void shared_copy(_Out_ uint8_t *dst, const uint8_t *src, size_t n)');
        const dst = Buffer.alloc(5);
        copy(dst, Buffer.from('hello'), 5);
        assert.equal(dst.toString(), 'hello', 'the runtime\'s memcpy serves the object\'s code');
      } finally {
        lib.unload();
      }
    });
  });
}

describe('kvmtest cc -shared: building in steps', () => {
  test('-shared -c compiles position-independent objects that -shared links; --print-cflags shows the flags', toolchainTest(), async () => {
    const dir = mkdtempSync(join(tempDir(), 'steps-'));
    const object = join(dir, 'shared.o');
    const compiled = await kvmtest(['cc', '-shared', '-c', '-o', object, join(FIXTURES, 'shared.c')]);
    assert.equal(compiled.status, 0, describeRun(compiled));
    const linked = await kvmtest(['cc', '-shared', '-o', join(dir, 'steps.so'), object]);
    assert.equal(linked.status, 0, describeRun(linked));
    assert.match(readelf(['-h'], join(dir, 'steps.so')), /Type:\s+DYN/);
    const flags = await kvmtest(['cc', '-shared', '--print-cflags']);
    assert.equal(flags.status, 0, describeRun(flags));
    assert.match(flags.stdout, /^-ffreestanding -fPIC -fno-stack-protector .* -mgeneral-regs-only -I\S+\/sdk\/include\n$/);
  });
});

describe('kvmtest cc -shared: flags that contradict it', () => {
  const source = join(FIXTURES, 'shared.c');
  for (const flag of ['-static', '-static-pie', '-pie', '-no-pie', '-fno-pic', '--higher-half', '-mcmodel=kernel']) {
    // Whichever side of -shared: both orders for one flag, one for the rest (each is a kvmtest process).
    const orders = flag === '-static' ? [['-shared', flag], [flag, '-shared']] : [[flag, '-shared']];
    test(`${flag} is refused with what to do`, toolchainTest(), async () => {
      for (const args of orders) {
        const built = await kvmtest(['cc', ...args, '-o', join(tempDir(), 'refused.so'), source]);
        assert.equal(built.status, 2, describeRun(built));
        assert.match(built.stderr, new RegExp(`^kvmtest cc: ${flag} .*, but -shared builds a position-independent shared object for mirror mode: remove ${flag}, or build a test binary without -shared\\n$`));
      }
    });
  }

  test('a function that is not defined anywhere fails the link, and says that there is no libc', toolchainTest(), async () => {
    const dir = mkdtempSync(join(tempDir(), 'undefined-'));
    writeFileSync(join(dir, 'calls-printf.c'), '#include <kvmtest.h>\nint printf(const char *, ...);\nKVMTEST(prints) { printf("x"); }\n');
    const built = await kvmtest(['cc', '-shared', '-o', join(dir, 'x.so'), join(dir, 'calls-printf.c')]);
    assert.equal(built.status, 1, describeRun(built));
    assert.match(built.stderr, /undefined reference to `printf'/);
    assert.match(built.stderr, /kvmtest cc: a shared object built with -shared must define every function it calls: it is linked without libc/);
  });
});
