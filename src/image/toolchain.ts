// `kvmtest cc`: builds test binaries with the system C compiler ($CC, or cc;
// gcc and clang both work). It compiles the SDK's runtime with fixed flags,
// then compiles and links the user's sources against it with freestanding
// flags and kvmtest's linker script. The user's own flags come after ours,
// so they can override them. With -shared it builds a shared object for
// mirror mode instead: everything position-independent, no linker script.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { cachedRuntime, headersUnder, objectsIn, runtimeKey, storeRuntime } from './runtime-cache.js';
import { constants as osConstants, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export class ToolchainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ToolchainError';
  }
}

export interface SdkPaths {
  /** The SDK's root (sdk/ in the package). */
  root: string;
  /** Holds kvmtest.h and kvmtest/{abi,x86}.h. */
  include: string;
  /** The runtime's sources, linked into every test binary. */
  runtime: string;
  runtimeSources: string[];
  /** Links at 0x200000. */
  linkerScript: string;
  /** Links at 0xffffffff80000000 (for -mcmodel=kernel code). */
  higherHalfLinkerScript: string;
}

/** Where the SDK is: the package's sdk/ directory (this file is dist/src/image/toolchain.js). */
export function sdkPaths(): SdkPaths {
  const root = fileURLToPath(new URL('../../../sdk/', import.meta.url));
  const runtime = join(root, 'runtime');
  if (!existsSync(runtime)) {
    throw new ToolchainError(`the kvmtest SDK is missing: expected its runtime at ${runtime}; reinstall kvmtest`);
  }
  const runtimeSources = readdirSync(runtime)
    .filter((f) => f.endsWith('.c') || f.endsWith('.S'))
    .sort()
    .map((f) => join(runtime, f));
  return {
    root,
    include: join(root, 'include'),
    runtime,
    runtimeSources,
    linkerScript: join(root, 'link', 'kvmtest.ld'),
    higherHalfLinkerScript: join(root, 'link', 'kvmtest-higher-half.ld'),
  };
}

export interface ToolchainOptions {
  /** Link at 0xffffffff80000000 and compile with -mcmodel=kernel. */
  higherHalf: boolean;
  /** Let the compiler use SSE/AVX/x87 registers in the user's code (never in the runtime). */
  allowSimd: boolean;
  /** Build a shared object (ET_DYN, -fPIC) for mirror mode instead of a static executable. */
  shared?: boolean;
}

/** What kvmtest cc adds to a compiler command, per part. */
export interface ToolchainFlags {
  /** For the runtime's sources. */
  runtime: string[];
  /** For the user's sources, before the user's own flags. */
  user: string[];
  /** For linking, before the user's own flags (the linker script comes with them, unless the user gives -T). */
  link: string[];
}

/**
 * Code for a ring-0 guest with no libc: no PIC (the image is linked at a
 * fixed address; a shared object is -fPIC instead), no stack protector (it
 * needs a TLS canary), no red zone (interrupt handlers may run on the same
 * stack), no unwind tables. General registers only, since
 * software-assisted KVMs (PVM) cannot emulate the SSE instructions compilers
 * emit on their own (pxor to zero a struct).
 */
const codeFlags = (pic: string) => [
  '-ffreestanding',
  pic,
  '-fno-stack-protector',
  '-mno-red-zone',
  '-fno-asynchronous-unwind-tables',
  '-O2',
  '-g',
];
const NO_PIC = '-fno-pic';
const PIC = '-fPIC';
const GENERAL_REGS_ONLY = '-mgeneral-regs-only';
const KERNEL_CODE_MODEL = '-mcmodel=kernel';
/** The runtime's symbols stay inside a shared object (entry.c exports kvmtest_entry alone). */
const HIDDEN = '-fvisibility=hidden';

/**
 * Linking a shared object that a process can dlopen with its libc loaded:
 * no libc of its own (-nostdlib: the runtime's memcpy and strlen are hidden
 * and serve the object's own code); every symbol defined at link time
 * (-z defs: an undefined one would be bound at dlopen to the host's libc,
 * whose code cannot run in the guest); references to its own symbols bound
 * to themselves (-Bsymbolic: no interposition, and the test table's
 * pointers become plain base-relative relocations); nothing resolved lazily
 * (-z now: the loader's resolver must never be entered from the guest).
 */
const SHARED_LINK = [
  '-shared',
  '-nostdlib',
  '-Wl,--build-id=none',
  '-Wl,-z,noexecstack',
  '-Wl,-z,defs',
  '-Wl,-Bsymbolic',
  '-Wl,-z,now',
];

/** How GNU ld and lld say that a symbol is used and not defined. */
const UNDEFINED_SYMBOL = /undefined (reference to|symbol)/;
const SHARED_UNDEFINED_HINT =
  'kvmtest cc: a shared object built with -shared must define every function it calls: it is linked without libc ' +
  '(the host\'s libc cannot run in the guest); define the function in your sources, or use the SDK\'s (kvmtest.h)\n';

export function toolchainFlags(options: ToolchainOptions, paths: SdkPaths = sdkPaths()): ToolchainFlags {
  if (options.shared) {
    const code = codeFlags(PIC);
    return {
      runtime: [...code, GENERAL_REGS_ONLY, HIDDEN, `-I${paths.include}`],
      user: [...code, ...(options.allowSimd ? [] : [GENERAL_REGS_ONLY]), `-I${paths.include}`],
      link: SHARED_LINK,
    };
  }
  const model = options.higherHalf ? [KERNEL_CODE_MODEL] : [];
  const code = codeFlags(NO_PIC);
  return {
    runtime: [...code, GENERAL_REGS_ONLY, ...model, `-I${paths.include}`],
    user: [...code, ...(options.allowSimd ? [] : [GENERAL_REGS_ONLY]), ...model, `-I${paths.include}`],
    // No -no-pie: -static already makes gcc and clang link a non-PIE
    // executable, and clang warns that -no-pie is unused when the same
    // command also compiles, which breaks -Werror builds.
    link: [
      '-static',
      '-nostdlib',
      // Debian's and Ubuntu's compilers ask for a build ID the script discards anyway.
      '-Wl,--build-id=none',
      // Assembly files without a .note.GNU-stack section would make ld warn.
      '-Wl,-z,noexecstack',
    ],
  };
}

/** Says a user's argument gives a linker script: -T file, -Tfile, -Wl,-T,file or -Wl,--script=file (not -Ttext=). */
function isLinkerScript(arg: string): boolean {
  if (arg.startsWith('-T')) return !/^-T(text|data|bss)\b/.test(arg);
  return /^-Wl,(.*,)?(-T|--script)/.test(arg);
}

/** kvmtest's linker script, unless the user gave their own (a shared object gets the linker's own layout). */
function linkerScriptArgs(options: ToolchainOptions, paths: SdkPaths, ccArgs: readonly string[]): string[] {
  if (options.shared || ccArgs.some(isLinkerScript)) return [];
  return ['-T', options.higherHalf ? paths.higherHalfLinkerScript : paths.linkerScript];
}

export interface CompileOptions {
  /** Environment for the compiler, and where $CC is read (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Directory the user's paths are relative to (default: process.cwd()). */
  cwd?: string;
}

export interface CompileResult {
  /** The compiler's exit status: 0 when the binary was built. */
  status: number;
  /** The compiler's standard error, to show the user as it is. */
  stderr: string;
  /** The commands run, for messages and --verbose output. */
  commands: string[][];
}

/** Our options, consumed before the rest goes to the compiler (-shared is added back with the link flags). */
const OWN_OPTIONS = new Set(['--higher-half', '--allow-simd', '-shared']);
/**
 * Options that contradict -shared, and why. The test table's pointers and
 * the runtime must be position-independent, and the object is loaded
 * wherever the process's loader puts it.
 */
const NOT_WITH_SHARED: ReadonlyArray<[RegExp, string]> = [
  [/^-static(-pie)?$/, 'links a static executable'],
  [/^-(no-)?pie$/, 'links an executable'],
  [/^-fno-(pic|PIC|pie|PIE)$/, 'compiles code that only works at a fixed address'],
  [/^-mcmodel=kernel$/, 'compiles code for the top 2 GiB of the address space only'],
  [/^--higher-half$/, 'links at a fixed address in the top 2 GiB'],
];
/** Options that build code for a mode other than x86-64 long mode. */
const WRONG_MODE = /^(-m32|-m16|-mx32|-march=i[3-6]86)$/;
/** Compiler options whose value is the next argument (so it is not a source file). */
const OPTIONS_WITH_VALUE = new Set([
  '-o', '-I', '-D', '-U', '-include', '-imacros', '-isystem', '-iquote', '-idirafter', '-iprefix',
  '-iwithprefix', '-isysroot', '-x', '-MF', '-MT', '-MQ', '-L', '-T', '-Xlinker', '-Xassembler',
  '-Xpreprocessor', '-Xclang', '-aux-info', '--param', '-target', '-arch', '-z', '-e', '-u', '-l',
]);
/** Options that stop before linking: no runtime, no linker script. */
const COMPILE_ONLY = new Set(['-c', '-S', '-E', '-M', '-MM']);

interface ParsedArgs {
  options: ToolchainOptions;
  /** Everything that goes to the compiler, in the order given. */
  ccArgs: string[];
  inputs: string[];
  output: string | undefined;
  compileOnly: boolean;
  version: boolean;
}

function parseArgs(args: readonly string[]): ParsedArgs {
  const parsed: ParsedArgs = {
    options: { higherHalf: false, allowSimd: false },
    ccArgs: [],
    inputs: [],
    output: undefined,
    compileOnly: false,
    version: false,
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    rejectOtherTargets(arg, args[i + 1]);
    if (OWN_OPTIONS.has(arg)) {
      if (arg === '--higher-half') parsed.options.higherHalf = true;
      else if (arg === '-shared') parsed.options.shared = true;
      else parsed.options.allowSimd = true;
      continue;
    }
    parsed.ccArgs.push(arg);
    if (OPTIONS_WITH_VALUE.has(arg)) {
      const value = args[++i];
      if (value === undefined) throw new ToolchainError(`${arg} needs a value`);
      parsed.ccArgs.push(value);
      if (arg === '-o') parsed.output = value;
    } else if (arg.startsWith('-o') && arg.length > 2) {
      parsed.output = arg.slice(2);
    } else if (COMPILE_ONLY.has(arg)) {
      parsed.compileOnly = true;
    } else if (arg === '--version') {
      parsed.version = true;
    } else if (arg === '-' || !arg.startsWith('-')) {
      parsed.inputs.push(arg);
    }
  }
  if (parsed.options.shared) rejectNotShared(args);
  return parsed;
}

/** Refuses what makes no sense in a shared object, whichever side of -shared it was given. */
function rejectNotShared(args: readonly string[]): void {
  for (const arg of args) {
    const why = NOT_WITH_SHARED.find(([pattern]) => pattern.test(arg))?.[1];
    if (why === undefined) continue;
    throw new ToolchainError(
      `${arg} ${why}, but -shared builds a position-independent shared object for mirror mode: ` +
        `remove ${arg}, or build a test binary without -shared`,
    );
  }
}

/** Refuses options that build code the runtime and the machine cannot run: 32-bit, another target. */
function rejectOtherTargets(arg: string, next: string | undefined): void {
  const target = arg === '-target' ? next : /^--?target=(.*)$/.exec(arg)?.[1];
  const otherTarget = target !== undefined && !/^x86_64/.test(target);
  if (!WRONG_MODE.test(arg) && !otherTarget) return;
  const what = otherTarget ? `builds code for ${target}` : 'builds 32-bit or 16-bit code';
  throw new ToolchainError(
    `${arg === '-target' ? `-target ${next}` : arg} ${what}, but kvmtest runs tests in 64-bit long mode and links them ` +
      'with its x86-64 runtime: remove it',
  );
}

/** The compiler to run: $CC split into a command and its own arguments ("ccache gcc"), or cc. */
interface Compiler {
  command: string[];
  fromEnv: boolean;
}

function compilerCommand(env: NodeJS.ProcessEnv): Compiler {
  const cc = (env['CC'] ?? '').trim();
  if (cc === '') return { command: ['cc'], fromEnv: false };
  return { command: cc.split(/\s+/), fromEnv: true };
}

function noCompiler(cc: Compiler): ToolchainError {
  const tried = cc.fromEnv ? ` (CC is "${cc.command.join(' ')}", which was not found)` : ' (cc was not found)';
  return new ToolchainError(`no C compiler found: kvmtest cc runs $CC, or cc; install gcc or clang, or set CC${tried}`);
}

interface Run {
  status: number;
  stderr: string;
  stdout?: string;
}

function run(cc: Compiler, args: string[], cwd: string, env: NodeJS.ProcessEnv, captureStdout = false): Run {
  const [command, ...own] = cc.command;
  const result = spawnSync(command!, [...own, ...args], {
    cwd,
    env,
    encoding: 'utf8',
    stdio: ['inherit', captureStdout ? 'pipe' : 'inherit', 'pipe'],
  });
  if (result.error) {
    if ((result.error as NodeJS.ErrnoException).code === 'ENOENT') throw noCompiler(cc);
    throw new ToolchainError(`cannot run ${cc.command.join(' ')}: ${result.error.message}`);
  }
  // Killed by a signal: report it as a shell would (128 + the signal number).
  const status = result.status ?? 128 + (result.signal ? osConstants.signals[result.signal] : 0);
  return { status, stderr: result.stderr ?? '', ...(captureStdout && { stdout: result.stdout ?? '' }) };
}

/**
 * `kvmtest cc [--higher-half] [--allow-simd] [cc args...] -o tests.elf a.c b.c x.S`,
 * or `kvmtest cc -shared [--allow-simd] [cc args...] -o tests.so a.c ...`.
 * Returns the compiler's status and stderr; throws ToolchainError when it
 * cannot start (no compiler, no sources, no -o).
 *
 * With -c, -S, -E, -M or -MM it only compiles (our flags and include path,
 * no runtime, no linking), so that build systems can compile objects and
 * link them with a final `kvmtest cc -o tests.elf *.o`.
 */
export function compileTests(args: readonly string[], options: CompileOptions = {}): CompileResult {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const parsed = parseArgs(args);
  const cc = compilerCommand(env);
  const commands: string[][] = [];

  if (parsed.version && parsed.inputs.length === 0) {
    commands.push([...cc.command, ...parsed.ccArgs]);
    return { ...run(cc, parsed.ccArgs, cwd, env), commands };
  }
  if (parsed.inputs.length === 0) {
    throw new ToolchainError(
      'no source files: give C (.c) or assembly (.S) files to build, e.g. `kvmtest cc -o tests.elf tests.c`',
    );
  }
  const paths = sdkPaths();
  const flags = toolchainFlags(parsed.options, paths);
  if (parsed.compileOnly) {
    const userArgs = [...flags.user, ...parsed.ccArgs];
    commands.push([...cc.command, ...userArgs]);
    return { ...run(cc, userArgs, cwd, env), commands };
  }
  if (parsed.output === undefined) {
    throw new ToolchainError('no output file: give one with -o, e.g. `kvmtest cc -o tests.elf tests.c`');
  }
  // Like a build tool, make the output's directory (build/ in a fresh clone).
  mkdirSync(dirname(resolve(cwd, parsed.output)), { recursive: true });

  // The runtime is compiled apart from the user's files so that their flags
  // (-O0, -mavx, --allow-simd) never reach it, once per compiler and flags
  // (runtime-cache.ts); in a fresh directory, so that concurrent builds do
  // not share objects.
  const scratch = mkdtempSync(join(tmpdir(), 'kvmtest-cc-'));
  try {
    const runtime = runtimeObjects(cc, flags.runtime, paths, scratch, env, commands);
    if ('failed' in runtime) {
      return {
        status: runtime.failed.status,
        stderr: `${runtime.failed.stderr}kvmtest cc: the kvmtest runtime (${paths.runtime}) failed to compile with ${cc.command.join(' ')}\n`,
        commands,
      };
    }
    const linkArgs = [
      ...flags.user,
      ...flags.link,
      ...linkerScriptArgs(parsed.options, paths, parsed.ccArgs),
      ...parsed.ccArgs,
      ...runtime.objects,
    ];
    commands.push([...cc.command, ...linkArgs]);
    const link = run(cc, linkArgs, cwd, env);
    const hint = parsed.options.shared && link.status !== 0 && UNDEFINED_SYMBOL.test(link.stderr) ? SHARED_UNDEFINED_HINT : '';
    return { status: link.status, stderr: runtime.stderr + link.stderr + hint, commands };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** A compiler ready to build guests: the runtime compiled, the flags worked out (testfile/build.ts uses it). */
export interface PreparedToolchain {
  /** The compiler's command ("gcc", or $CC split into words). */
  command: string[];
  /** What the compiler says of its version: part of every cache key. */
  version: string;
  /** Flags for guest sources (before any of the user's). */
  userFlags: string[];
  /** Flags for linking a guest ELF, the linker script included. */
  linkFlags: string[];
  /** The runtime's objects, linked into every guest ELF. */
  runtimeObjects: string[];
  /** What the runtime was built from and how (cache key). */
  runtimeKey: string;
  env: NodeJS.ProcessEnv;
}

/**
 * Prepares the system compiler for building guests from sources kvmtest
 * generates (TypeScript tests' c`` and asm`` snippets). The runtime is built
 * once per compiler and flags (runtime-cache.ts); where the cache cannot
 * keep it, it is built in `scratch`, which must outlive the builds.
 */
export function prepareToolchain(scratch: string, env: NodeJS.ProcessEnv = process.env): PreparedToolchain {
  const cc = compilerCommand(env);
  const paths = sdkPaths();
  const flags = toolchainFlags({ higherHalf: false, allowSimd: false }, paths);
  const commands: string[][] = [];
  const runtime = runtimeObjects(cc, flags.runtime, paths, scratch, env, commands);
  if ('failed' in runtime) {
    throw new ToolchainError(
      `the kvmtest runtime (${paths.runtime}) failed to compile with ${cc.command.join(' ')}:\n${runtime.failed.stderr}`,
    );
  }
  const version = run(cc, ['--version'], scratch, env, true).stdout ?? '';
  return {
    command: cc.command,
    version,
    userFlags: flags.user,
    linkFlags: [...flags.user, ...flags.link, ...linkerScriptArgs({ higherHalf: false, allowSimd: false }, paths, [])],
    runtimeObjects: runtime.objects,
    runtimeKey: runtime.key ?? version,
    env,
  };
}

type RuntimeBuild = { objects: string[]; stderr: string; key?: string } | { failed: Run };

/**
 * The runtime's object files for this compiler and these flags: from the
 * cache when an earlier build made them, otherwise compiled in `scratch`
 * and offered to the cache (only a build without warnings, so that a
 * warning is never hidden by a later cached build). The key covers what
 * changes the objects: the compiler's command and version, the flags, the
 * SDK's sources and headers.
 */
function runtimeObjects(
  cc: Compiler,
  runtimeFlags: string[],
  paths: SdkPaths,
  scratch: string,
  env: NodeJS.ProcessEnv,
  commands: string[][],
): RuntimeBuild {
  const version = run(cc, ['--version'], scratch, env, true);
  const key = version.status === 0
    ? runtimeKey({
        command: cc.command,
        version: version.stdout ?? '',
        flags: runtimeFlags,
        files: [...paths.runtimeSources, ...headersUnder(paths.runtime), ...headersUnder(paths.include)],
      })
    : undefined;
  const cached = key === undefined ? undefined : cachedRuntime(key, env);
  if (cached) return { objects: cached, stderr: '', key };
  const build = join(scratch, 'runtime');
  mkdirSync(build);
  const args = ['-c', ...runtimeFlags, ...paths.runtimeSources];
  commands.push([...cc.command, ...args]);
  const result = run(cc, args, build, env);
  if (result.status !== 0) return { failed: result };
  const stored = key !== undefined && result.stderr === '' ? storeRuntime(key, build, env) : undefined;
  return { objects: stored ?? objectsIn(build), stderr: result.stderr, ...(key !== undefined && { key }) };
}
