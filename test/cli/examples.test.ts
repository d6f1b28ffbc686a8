// The example suite, the way a user first meets kvmtest: `npm start` builds
// examples/*.c and examples/*.S into build/examples.elf and the keyboard
// driver examples/driver/kbd.c into build/driver.elf with `kvmtest cc`, then
// runs build/examples.elf and the TypeScript test files in examples/ in one
// `kvmtest run`. Every example passes (or is ignored on purpose), and the
// exit status is 0.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { parseElf } from '../../src/image/elf.js';
import { TEST_TABLE_SECTION } from '../../src/image/test-table.js';
import { guestTest } from '../helpers/kvm.js';
import { describeRun, lines, ROOT, runCommand } from './helpers.js';

/** The tests declared in examples/: KVMTEST(...) in C, kvmtest_record in assembly. [name, ignored]. */
function declaredExamples(): Array<[string, boolean]> {
  const dir = join(ROOT, 'examples');
  const found: Array<[string, boolean]> = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.c'))) {
    const source = readFileSync(join(dir, file), 'utf8');
    for (const match of source.matchAll(/^KVMTEST\((\w+)([^)]*(?:\([^)]*\)[^)]*)*)\)/gm)) {
      found.push([match[1]!, /\.ignore\s*=\s*true/.test(match[2]!)]);
    }
  }
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.S'))) {
    const source = readFileSync(join(dir, file), 'utf8');
    for (const match of source.matchAll(/^kvmtest_record (\w+),(.*)$/gm)) {
      found.push([match[1]!, /ignore=1/.test(match[2]!)]);
    }
  }
  return found.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Every TypeScript example file and the tests it declares, in declaration
 * order (which is how a test file's results are reported). All pass on
 * every KVM, PVM included; a new example file must be listed here.
 */
const TYPESCRIPT_EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  'examples/cpu.kvmtest.ts': [
    'the guest reads the brand string the test gives',
    'the driver detects VMware by the hypervisor leaf',
  ],
  'examples/devices.kvmtest.ts': [
    'the HPET counts once enabled',
    'the power-limit MSR refuses reserved bits with #GP',
    'reading a missing MSR raises #GP',
    'a device that answers later',
  ],
  'examples/interrupts.kvmtest.ts': [
    'a device raises its interrupt after the guest writes a command',
    'an MSI to CPU 1, from a device CPU 1 talked to',
  ],
  'examples/keyboard.kvmtest.ts': [
    'driver resets the keyboard',
    'driver waits for a slow controller',
    'driver reports a keyboard that asks for a resend',
  ],
  'examples/memory.kvmtest.ts': [
    'the firmware table the test preloads checks out',
    'a device writes into guest memory (DMA)',
    'a device reads from guest memory',
  ],
  'examples/ports.kvmtest.ts': [
    'inw reads the port',
    'the clock reads 09:15:30',
    'a handler sees each access and its size',
  ],
  'examples/registers.kvmtest.ts': [
    'asm sets a register',
    'args arrive in rdi and rsi',
    'regs set registers at entry',
    'bytes() runs raw machine code',
    'the machine runs in long mode with paging',
    'ud2 raises #UD',
    'hlt ends the test',
  ],
};

/** The test files under examples/, as kvmtest run finds them: in path order, skipping node_modules and hidden directories. */
function typescriptExampleFiles(): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      if (entry.isDirectory()) walk(join(dir, entry.name));
      else if (/\.kvmtest\.(ts|mts|js|mjs)$/.test(entry.name)) found.push(relative(ROOT, join(dir, entry.name)));
    }
  };
  walk(join(ROOT, 'examples'));
  return found;
}

interface Section {
  input: string;
  /** "running N tests" */
  count: string;
  /** "test NAME ... ok" lines. */
  tests: string[];
}

/** A multi-input pretty report, cut at its "     Running INPUT" headers. */
function sections(stdout: string): Section[] {
  const found: Section[] = [];
  for (const line of lines(stdout)) {
    const header = /^ {5}Running (.+)$/.exec(line);
    if (header) found.push({ input: header[1]!, count: '', tests: [] });
    else if (found.length > 0 && line.startsWith('running ')) found.at(-1)!.count = line;
    else if (found.length > 0 && line.startsWith('test ') && line.includes(' ... ')) found.at(-1)!.tests.push(line);
  }
  return found;
}

/**
 * C examples that skip themselves (kskip) where this host's KVM lacks what
 * they test; the report shows them as "ignored, <reason>". Elsewhere they pass.
 */
const HOST_DEPENDENT_EXAMPLES: ReadonlySet<string> = new Set([
  'x2apic_self_ipi', // CPUID.1:ECX.x2APIC
  'tsc_deadline_timer_fires', // CPUID.1:ECX.TSC-deadline
  'level_eoi_clears_remote_irr', // a KVM that sets ISR on delivery (PVM does not)
]);

const plural = (n: number) => `running ${n} test${n === 1 ? '' : 's'}`;

test('npm start: builds and runs the C, assembly and TypeScript examples; all pass, exit status 0', guestTest(), async () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const start = pkg.scripts['start'] ?? '';
  assert.match(start, /kvmtest\.js cc -o build\/examples\.elf examples\/\*\.c examples\/\*\.S /, 'the start script builds the C and assembly examples');
  assert.match(start, /kvmtest\.js cc -o build\/driver\.elf examples\/driver\/kbd\.c /, 'the start script builds the keyboard driver');
  assert.match(start, /kvmtest\.js run build\/examples\.elf examples\/$/, 'the start script runs the binary and the TypeScript examples in one run');
  assert.deepEqual(typescriptExampleFiles(), Object.keys(TYPESCRIPT_EXAMPLES), 'every TypeScript example file is listed in TYPESCRIPT_EXAMPLES');

  // The keyboard examples need the driver: npm start must build it, not find it.
  const driver = join(ROOT, 'build', 'driver.elf');
  rmSync(driver, { force: true });
  const result = await runCommand('npm', ['run', '--silent', 'start'], { cwd: ROOT });
  assert.equal(result.status, 0, describeRun(result));

  const declared = declaredExamples();
  assert.ok(declared.length > 0);
  // A host-dependent example that skipped itself here counts as ignored, with its reason.
  const skippedHere = new Set(
    lines(result.stdout)
      .map((line) => /^test (\w+) \.\.\. ignored, .+$/.exec(line)?.[1])
      .filter((name): name is string => name !== undefined && HOST_DEPENDENT_EXAMPLES.has(name)),
  );
  const examples = declared.map(([name, ignored]): [string, boolean] => [name, ignored || skippedHere.has(name)]);
  // The kvm-unit-tests-style port (page tables, alloc_page, report, .cpuid, this_cpu_has) runs everywhere, PVM included.
  for (const name of ['cpuid_without_rdtscp', 'paging_alias_write_protect_and_unmap', 'paging_install_page_splits_a_large_page']) {
    assert.ok(examples.some(([n, ignored]) => n === name && !ignored), `examples/paging.c declares ${name}`);
  }
  const expected: Section[] = [
    {
      input: 'build/examples.elf',
      count: plural(examples.length),
      tests: examples.map(([name, ignored]) => {
        const skip = skippedHere.has(name) ? lines(result.stdout).find((line) => line.startsWith(`test ${name} ... ignored, `)) : undefined;
        return skip ?? `test ${name} ... ${ignored ? 'ignored' : 'ok'}`;
      }),
    },
    ...Object.entries(TYPESCRIPT_EXAMPLES).map(([file, names]) => ({
      input: file,
      count: plural(names.length),
      tests: names.map((name) => `test ${name} ... ok`),
    })),
  ];
  // The driver is an input of no run: it has no test table, and the search of examples/ does not reach build/.
  assert.deepEqual(sections(result.stdout), expected, result.stdout);

  const ignored = examples.filter(([, i]) => i).length;
  const total = examples.length + Object.values(TYPESCRIPT_EXAMPLES).flat().length;
  assert.match(
    lines(result.stdout).at(-1)!,
    new RegExp(`^test result: ok\\. ${total - ignored} passed; 0 failed; ${ignored} ignored; 0 measured; 0 filtered out; finished in \\d+\\.\\d\\ds$`),
  );

  assert.ok(existsSync(driver), 'npm start built build/driver.elf');
  const elf = parseElf(readFileSync(driver), driver);
  assert.ok(elf.symbols.some((s) => s.name === 'test_kbd_reset'), 'the driver has the function the keyboard examples enter');
  assert.ok(!elf.sections.some((s) => s.name === TEST_TABLE_SECTION), 'the driver declares no KVMTEST, so it has no test table');
});
