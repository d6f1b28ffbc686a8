// Source lines from DWARF line tables: what LineTable says of every byte of
// real ELF files' code, against binutils' addr2line, for the debug formats
// compilers emit (DWARF 5 and 4, compressed sections, gcc and clang); and
// the one place it departs from addr2line on purpose: code inlined from
// kvmtest's headers is reported at the caller's line. No /dev/kvm needed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseElf } from '../../src/image/elf.js';
import { LineTable } from '../../src/image/line-table.js';

const SOURCE = `
static volatile int sink;

__attribute__((noinline)) static int twice(int x)
{
    sink = x;
    return x * 2;
}

int loop(int n)
{
    int total = 0;
    for (int i = 0; i < n; i++)
        total += twice(i);
    return total;
}

void _start(void)
{
    sink = loop(3);
    for (;;)
        ;
}
`;

function has(command: string): boolean {
  try {
    execFileSync(command, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'kvmtest-lines-'));
after(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'lines.c'), SOURCE);

function build(compiler: string, flags: string[], name: string): string {
  const out = join(dir, name);
  execFileSync(compiler, ['-g', '-O1', '-ffreestanding', '-nostdlib', '-static', '-fno-pie', '-no-pie', ...flags, '-o', out, 'lines.c'], { cwd: dir, stdio: 'pipe' });
  return out;
}

/** file:line for each address, as addr2line reads the ELF. */
function addr2line(elf: string, addresses: bigint[]): string[] {
  const out = execFileSync('addr2line', ['-e', elf, ...addresses.map((a) => `0x${a.toString(16)}`)], { encoding: 'utf8' });
  return out.trimEnd().split('\n').map((line) => line.replace(/ \(discriminator \d+\)$/, ''));
}

/** Compares LineTable with addr2line at every byte of the file's functions. */
function agreesWithAddr2line(path: string): void {
  const elf = parseElf(readFileSync(path), path);
  const table = new LineTable(elf);
  const functions = elf.symbols.filter((s) => s.kind === 'func' && s.size > 0n);
  assert.deepEqual(functions.map((f) => f.name).sort(), ['_start', 'loop', 'twice']);
  const addresses = functions.flatMap((f) => Array.from({ length: Number(f.size) }, (_, i) => f.value + BigInt(i)));
  const expected = addr2line(path, addresses);
  let compared = 0;
  addresses.forEach((address, i) => {
    const theirs = expected[i]!;
    const ours = table.lookup(address);
    // "??:0" no line; "FILE:?" line 0, which compilers give code of no line (clang does).
    if (theirs.startsWith('??') || theirs.endsWith(':?') || theirs.endsWith(':0')) {
      assert.equal(ours, undefined, `0x${address.toString(16)}: addr2line has no line, we say ${JSON.stringify(ours)}`);
      return;
    }
    assert.ok(ours, `0x${address.toString(16)}: addr2line says ${theirs}, we have no line`);
    assert.equal(`${basename(ours.file)}:${ours.line}`, `${basename(theirs.slice(0, theirs.lastIndexOf(':')))}:${theirs.slice(theirs.lastIndexOf(':') + 1)}`, `0x${address.toString(16)}`);
    compared++;
  });
  assert.ok(compared > 20, `compared ${compared} addresses`);
}

const noGcc = has('gcc') && has('addr2line') ? false : 'gcc or addr2line (binutils) is not installed';
const noClang = !has('clang') ? 'clang is not installed (apt-get install clang)' : has('addr2line') ? false : 'addr2line (binutils) is not installed';

describe('DWARF line tables', () => {
  test('gcc, DWARF 5: every byte of code has the line addr2line gives', { skip: noGcc }, () => {
    agreesWithAddr2line(build('gcc', ['-gdwarf-5'], 'gcc5.elf'));
  });

  test('gcc, DWARF 4', { skip: noGcc }, () => {
    agreesWithAddr2line(build('gcc', ['-gdwarf-4'], 'gcc4.elf'));
  });

  test('gcc, compressed debug sections (-gz)', { skip: noGcc }, () => {
    const path = build('gcc', ['-gz'], 'gccz.elf');
    const sections = execFileSync('readelf', ['-S', '-W', path], { encoding: 'utf8' });
    assert.match(sections, /\.debug_line\s+PROGBITS\s+\S+\s+\S+\s+\S+\s+\S+\s+C/, 'the line table is compressed');
    agreesWithAddr2line(path);
  });

  test('clang, DWARF 5', { skip: noClang }, () => {
    agreesWithAddr2line(build('clang', ['-gdwarf-5', '-fuse-ld=bfd'], 'clang5.elf'));
  });

  test("code inlined from kvmtest's headers is at the caller's line; from the user's own headers, at its own", { skip: noGcc }, () => {
    mkdirSync(join(dir, 'kvmtest'), { recursive: true });
    const inline = (name: string) => `static inline __attribute__((always_inline)) void ${name}(void)\n{\n    __asm__ volatile("pause");\n}\n`;
    writeFileSync(join(dir, 'kvmtest', 'x86.h'), inline('sdk_pause'));
    writeFileSync(join(dir, 'mine.h'), inline('my_pause'));
    writeFileSync(
      join(dir, 'inlined.c'),
      '#include "kvmtest/x86.h"\n#include "mine.h"\nvoid _start(void)\n{\n    sdk_pause();\n    my_pause();\n    for (;;)\n        ;\n}\n',
    );
    const path = join(dir, 'inlined.elf');
    execFileSync('gcc', ['-g', '-O1', '-ffreestanding', '-nostdlib', '-static', '-no-pie', '-I.', '-o', path, 'inlined.c'], { cwd: dir, stdio: 'pipe' });
    const elf = parseElf(readFileSync(path), path);
    const start = elf.symbols.find((s) => s.name === '_start')!;
    const table = new LineTable(elf);
    // The two pause instructions (f3 90), in order.
    const code = readFileSync(path);
    const text = elf.sections.find((s) => s.name === '.text')!;
    const pauses: bigint[] = [];
    for (let at = Number(start.value - text.addr) + text.offset; pauses.length < 2; at++) {
      if (code[at] === 0xf3 && code[at + 1] === 0x90) pauses.push(BigInt(at - text.offset) + text.addr);
    }
    const [inHeader, inMine] = addr2line(path, pauses);
    assert.match(inHeader!, /kvmtest\/x86\.h:3$/, 'addr2line: the SDK pause is at its own line');
    assert.deepEqual(table.lookup(pauses[0]!, start.value), { file: 'inlined.c', line: 5 });
    assert.match(inMine!, /mine\.h:3$/);
    assert.deepEqual(table.lookup(pauses[1]!, start.value), { file: 'mine.h', line: 3 });
  });

  test('a file with no line table, or a broken one, gives no lines and no error', { skip: noGcc }, () => {
    const path = build('gcc', [], 'broken.elf');
    const bytes = readFileSync(path);
    const elf = parseElf(bytes, path);
    const start = elf.symbols.find((s) => s.name === '_start')!.value;
    assert.ok(new LineTable(elf).lookup(start), 'the intact file has a line for _start');
    const lineSection = elf.sections.find((s) => s.name === '.debug_line')!;
    bytes.fill(0xff, lineSection.offset + 4, lineSection.offset + lineSection.size);
    assert.equal(new LineTable(parseElf(bytes, path)).lookup(start), undefined);
    const stripped = join(dir, 'stripped.elf');
    execFileSync('objcopy', ['--strip-debug', path, stripped]);
    const bare = parseElf(readFileSync(stripped), stripped);
    assert.equal(new LineTable(bare).lookup(start), undefined);
  });
});
