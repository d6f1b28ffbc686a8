// Builds tiny guests for the engine's tests with the system toolchain (GNU
// as, ld, objcopy, gcc): assembly text in, an ELF path or flat bytes out.
// Everything lands in one temporary directory, removed when the process exits.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface AssembleOptions {
  /** Where the first (text) segment goes: passed to ld as -Ttext-segment. Default 0x200000. */
  linkAddress?: bigint | number;
  /** Link at 0xffffffff80000000 (the -mcmodel=kernel area) instead of linkAddress. */
  higherHalf?: boolean;
  /** A linker script's text; replaces the default layout (linkAddress is then ignored). */
  linkerScript?: string;
  /** Extra arguments for `as` (for example --32). */
  extraAsArgs?: string[];
  /** Extra arguments for `ld` (for example -pie, or -m elf_i386 with --32). */
  extraLdArgs?: string[];
  /** A file name stem, for readable paths in messages. */
  name?: string;
}

export const HIGHER_HALF_LINK = 0xffffffff80000000n;
export const DEFAULT_LINK = 0x200000n;

let workDir: string | undefined;
let counter = 0;

/** The process's temporary directory for built guests. */
export function tempDir(): string {
  if (!workDir) {
    workDir = mkdtempSync(join(tmpdir(), 'kvmtest-engine-'));
    const dir = workDir;
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return workDir;
}

/** A fresh path in the temporary directory. */
export function tempPath(name: string): string {
  return join(tempDir(), `${counter++}-${name}`);
}

function run(tool: string, args: string[]): void {
  try {
    execFileSync(tool, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`${tool} ${args.join(' ')} failed:\n${e.stderr?.toString() ?? e.message}`);
  }
}

/** Assembles `source` into a relocatable object file (ET_REL) and returns its path. */
export function assembleObject(source: string, name = 'object', extraAsArgs: string[] = []): string {
  const src = tempPath(`${name}.s`);
  const obj = tempPath(`${name}.o`);
  writeFileSync(src, source.endsWith('\n') ? source : `${source}\n`);
  run('as', [...extraAsArgs, '-o', obj, src]);
  return obj;
}

/**
 * Assembles GNU-syntax `source` and links it into a static executable
 * (separate code and data segments, 4 KiB pages, entry `_start` if defined).
 * Returns the ELF's path.
 */
export function assemble(source: string, options: AssembleOptions = {}): string {
  const name = options.name ?? 'guest';
  const obj = assembleObject(source, name, options.extraAsArgs);
  const elf = tempPath(`${name}.elf`);
  const args = ['-static', '-nostdlib', '-z', 'max-page-size=0x1000', '-z', 'separate-code', '-z', 'noexecstack'];
  if (options.linkerScript !== undefined) {
    const script = tempPath(`${name}.ld`);
    writeFileSync(script, options.linkerScript);
    args.push('-T', script);
  } else {
    const at = options.higherHalf ? HIGHER_HALF_LINK : BigInt(options.linkAddress ?? DEFAULT_LINK);
    args.push(`-Ttext-segment=0x${at.toString(16)}`);
  }
  args.push(...(options.extraLdArgs ?? []), '-o', elf, obj);
  run('ld', args);
  return elf;
}

/** gcc flags for freestanding ring-0 code that uses no SSE (and so runs under software KVMs too). */
export const KERNEL_CFLAGS = [
  '-O1', '-ffreestanding', '-fno-pic', '-fno-stack-protector', '-fcf-protection=none',
  '-mno-red-zone', '-mgeneral-regs-only', '-fno-asynchronous-unwind-tables',
];

/**
 * Compiles freestanding C with gcc (plus `cflags`, for example -mcmodel=kernel)
 * and links it like assemble(). Returns the ELF's path.
 */
export function compileGuest(source: string, cflags: string[], options: AssembleOptions = {}): string {
  const name = options.name ?? 'cguest';
  const src = tempPath(`${name}.c`);
  writeFileSync(src, source);
  const asm = tempPath(`${name}.s`);
  run('gcc', [...KERNEL_CFLAGS, ...cflags, '-S', '-o', asm, src]);
  return assemble(readFileSync(asm, 'utf8'), { ...options, name });
}

/**
 * Assembles `source` and returns its raw bytes (as + objcopy -O binary): for
 * flat images. Only .text is kept, so put data in it too and address it
 * rip-relative (nothing is relocated).
 */
export function flat(source: string): Uint8Array {
  const obj = assembleObject(source, 'flat');
  const bin = tempPath('flat.bin');
  run('objcopy', ['-O', 'binary', '-j', '.text', obj, bin]);
  return new Uint8Array(readFileSync(bin));
}

/** flat() for each source of a record: the same keys, the bytes as values. */
export function flatAll<K extends string>(sources: Readonly<Record<K, string>>): Record<K, Uint8Array> {
  const out = {} as Record<K, Uint8Array>;
  for (const key of Object.keys(sources) as K[]) out[key] = flat(sources[key]);
  return out;
}

/**
 * Symbol name -> address, read with binutils' nm (independent of the
 * engine's ELF reader); `dynamic`: the exported symbols of a shared object.
 */
export function symbolTable(elf: string, dynamic = false): Map<string, bigint> {
  const out = execFileSync('nm', [...(dynamic ? ['-D'] : []), '--defined-only', elf], { encoding: 'utf8' });
  const table = new Map<string, bigint>();
  for (const line of out.split('\n')) {
    const m = /^([0-9a-f]+) \S (\S+)$/.exec(line.trim());
    if (m) table.set(m[2]!, BigInt(`0x${m[1]}`));
  }
  return table;
}

/** The address of `name` in `table`; throws (failing the test) when the symbol is missing. */
export function addressOf(table: ReadonlyMap<string, bigint>, name: string): bigint {
  const value = table.get(name);
  if (value === undefined) throw new Error(`symbol ${name} is not defined in the test guest`);
  return value;
}

/** Compiles a C program for the host with gcc, runs it and returns its standard output. */
export function compileAndRunC(source: string, name = 'prog'): string {
  const src = tempPath(`${name}.c`);
  const exe = tempPath(name);
  writeFileSync(src, source);
  run('gcc', ['-O0', '-o', exe, src]);
  return execFileSync(exe, { encoding: 'utf8' });
}

/** Why clang cannot be used here (it is not installed), or undefined; never skipped under CI, which installs it. */
export function clangSkipReason(): string | undefined {
  if ((process.env['CI'] ?? '') !== '') return undefined;
  try {
    execFileSync('clang', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'clang is not installed (apt-get install clang)';
  }
}

/** The tools these helpers need that are missing from PATH (empty when all are there). */
export function missingTools(tools: readonly string[] = ['as', 'ld', 'objcopy', 'nm', 'readelf', 'gcc']): string[] {
  return tools.filter((tool) => {
    try {
      execFileSync(tool, ['--version'], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
}

/** Builds C `source` into a shared object with gcc (for mirror mode: general registers only, so that PVM can run it). */
export function compileShared(source: string, name = 'lib', extraArgs: string[] = []): string {
  const src = tempPath(`${name}.c`);
  const so = tempPath(`${name}.so`);
  writeFileSync(src, source);
  run('gcc', ['-O1', '-mgeneral-regs-only', '-fPIC', '-shared', '-o', so, src, ...extraArgs]);
  return so;
}
