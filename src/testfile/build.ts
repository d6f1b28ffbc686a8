// Builds a test file's c``, c.unit`` and asm`` snippets into one guest ELF:
// each snippet is compiled (or assembled) on its own, several at once, into
// an object whose only global symbol is its entry (snippetSymbol), and the
// objects are linked with the SDK's runtime. Objects and ELFs are kept in
// the cache directory under keys that cover everything they are made from
// (the compiler and its version, the flags, the SDK, the source), so a
// second run of an unchanged file compiles nothing.
//
// A snippet that does not compile, or whose object does not link, fails its
// own test with the compiler's message (which names the test file and line:
// each snippet starts with a #line directive); the file's other snippets
// are linked without it.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseElf } from '../image/elf.js';
import { cacheDirectory, headersUnder } from '../image/runtime-cache.js';
import { type PreparedToolchain, prepareToolchain, sdkPaths, ToolchainError } from '../image/toolchain.js';
import type { SnippetGuest } from './guests.js';
import { displayPath } from './location.js';

export interface FileBuild {
  /** The ELF that holds every snippet that built, when at least one did. */
  elf?: string;
  /** Snippets that did not build, and why (the compiler's or linker's message). */
  errors: Map<SnippetGuest, string>;
  /** What the compiler said about snippets that did build (warnings), to show the user. */
  warnings: string[];
}

const symbols = new WeakMap<SnippetGuest, string>();

/** The entry symbol of a snippet in its file's guest ELF: named by its content. */
export function snippetSymbol(snippet: SnippetGuest): string {
  let symbol = symbols.get(snippet);
  if (symbol === undefined) {
    symbol = `kt_ts_${createHash('sha256').update(snippet.kind).update('\0').update(snippet.source).digest('hex').slice(0, 16)}`;
    symbols.set(snippet, symbol);
  }
  return symbol;
}

/** How messages name a snippet: "c`...` at examples/ports.kvmtest.ts:12". */
export function describeSnippet(snippet: SnippetGuest): string {
  const tag = snippet.kind === 'c-unit' ? 'c.unit' : snippet.kind;
  return `${tag}\`...\` at ${displayPath(snippet.at.file)}:${snippet.at.line}`;
}

/** The line the entry's alias is written at, so that an error there says what it is about. */
const ENTRY_MARK = 'kvmtest: the entry, void test(void)';

/**
 * The source the compiler gets: the snippet, framed, with its TypeScript
 * file and line. A snippet's code is a function named test (a c``
 * body's is made so); the entry symbol is an alias of it, so that fault
 * reports say "test+0x12" rather than the entry's hashed name.
 */
export function snippetSource(snippet: SnippetGuest): { text: string; language: 'c' | 'assembler' } {
  const symbol = snippetSymbol(snippet);
  const file = JSON.stringify(displayPath(snippet.at.file));
  const line = Math.max(1, snippet.at.line);
  const entry = `#line 1 "${ENTRY_MARK}"\nvoid ${symbol}(void) __attribute__((alias("test")));\n`;
  switch (snippet.kind) {
    case 'c':
      return { language: 'c', text: `#include <kvmtest.h>\nstatic void test(void)\n{\n#line ${line} ${file}\n${snippet.source}\n;}\n${entry}` };
    case 'c-unit':
      return { language: 'c', text: `#include <kvmtest.h>\n#line ${line} ${file}\n${snippet.source}\n${entry}` };
    case 'asm':
      // GNU as reads `# LINE "FILE"` as a line marker, as cpp's output has them.
      return {
        language: 'assembler',
        text:
          `.intel_syntax noprefix\n.text\n.type test, @function\ntest:\n` +
          `.globl ${symbol}\n.type ${symbol}, @function\n.set ${symbol}, test\n# ${line} ${file}\n${snippet.source}\n`,
      };
  }
}

let toolchain: { scratch: string; prepared: PreparedToolchain } | { error: string } | undefined;
let sdkHash: string | undefined;

function preparedToolchain(): PreparedToolchain {
  if (!toolchain) {
    const scratch = mkdtempSync(join(tmpdir(), 'kvmtest-build-'));
    process.once('exit', () => rmSync(scratch, { recursive: true, force: true }));
    try {
      toolchain = { scratch, prepared: prepareToolchain(scratch) };
    } catch (err) {
      if (!(err instanceof ToolchainError)) throw err;
      toolchain = { error: err.message };
    }
  }
  if ('error' in toolchain) throw new ToolchainError(toolchain.error);
  return toolchain.prepared;
}

function sdkDigest(): string {
  if (sdkHash === undefined) {
    const hash = createHash('sha256');
    for (const file of headersUnder(sdkPaths().include).sort()) hash.update(file).update('\0').update(readFileSync(file));
    sdkHash = hash.digest('hex');
  }
  return sdkHash;
}

function key(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32);
}

/** Writes a file into the cache in one step (a concurrent reader sees all of it or none). */
function store(path: string, data: Uint8Array | string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(temporary, data);
    renameSync(temporary, path);
  } catch {
    // A read-only cache: the build is used from where it was made.
    rmSync(temporary, { force: true });
  }
}

interface Ran {
  status: number;
  stderr: string;
}

/** Processes running now, and those waiting for a turn: at most one per CPU runs. */
let running = 0;
const waiting: Array<() => void> = [];

async function turn<T>(work: () => Promise<T>): Promise<T> {
  if (running >= availableParallelism()) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await work();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** Runs a command without blocking the event loop (snippets build side by side, one per CPU). */
function runAsync(command: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Ran> {
  return turn(() => spawned(command, cwd, env));
}

function spawned(command: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(command[0]!, command.slice(1), { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (err) => resolve({ status: 127, stderr: `cannot run ${command[0]}: ${err.message}\n` }));
    child.on('close', (code, signal) => resolve({ status: code ?? (signal ? 128 : 1), stderr }));
  });
}

/** objcopy, to leave a snippet's entry its only global symbol; llvm-objcopy where binutils' is missing. */
let objcopyCommand: string | undefined;
async function objcopy(env: NodeJS.ProcessEnv, cwd: string): Promise<string> {
  if (objcopyCommand) return objcopyCommand;
  for (const candidate of ['objcopy', 'llvm-objcopy']) {
    const probe = await runAsync([candidate, '--version'], cwd, env);
    if (probe.status === 0) return (objcopyCommand = candidate);
  }
  throw new ToolchainError('neither objcopy (binutils) nor llvm-objcopy was found: kvmtest needs one to build c`` and asm`` snippets; install binutils');
}

type Compiled = { object: string; warnings: string; key: string } | { error: string };

async function compileSnippet(snippet: SnippetGuest, tools: PreparedToolchain, cache: string, scratch: string): Promise<Compiled> {
  const { text, language } = snippetSource(snippet);
  const symbol = snippetSymbol(snippet);
  // -g for assembly too: its line table maps the code to the test file's lines.
  const flags = language === 'c' ? tools.userFlags : ['-g'];
  const objectKey = key({ cc: tools.command, version: tools.version, flags, language, text, sdk: sdkDigest(), symbol });
  const cached = join(cache, 'snippets', `${objectKey}.o`);
  const warningsFile = join(cache, 'snippets', `${objectKey}.warnings`);
  // The compiler's verdict on the same input is the same: a failure is kept too.
  const failure = join(cache, 'snippets', `${objectKey}.error`);
  if (existsSync(failure)) return { error: readFileSync(failure, 'utf8') };
  if (existsSync(cached)) {
    return { object: cached, warnings: existsSync(warningsFile) ? readFileSync(warningsFile, 'utf8') : '', key: objectKey };
  }
  const source = join(scratch, `${symbol}.${language === 'c' ? 'c' : 's'}`);
  const object = join(scratch, `${symbol}.o`);
  writeFileSync(source, text);
  const compile = await runAsync([...tools.command, '-c', ...flags, '-x', language, source, '-o', object], scratch, tools.env);
  if (compile.status !== 0) {
    const error = compile.stderr.includes(ENTRY_MARK)
      ? `${describeSnippet(snippet)} defines no \`void test(void)\`: a c.unit's entry is its function named test`
      : `${describeSnippet(snippet)} failed to ${language === 'c' ? 'compile' : 'assemble'}:\n${compile.stderr.trimEnd()}`;
    // Only a real verdict is kept: not a compiler that could not start, or was killed.
    if (compile.status === 1) store(failure, error);
    return { error };
  }
  const localize = await runAsync([await objcopy(tools.env, scratch), `--keep-global-symbol=${symbol}`, object], scratch, tools.env);
  if (localize.status !== 0) return { error: `${describeSnippet(snippet)}: objcopy failed on its object:\n${localize.stderr.trimEnd()}` };
  store(cached, readFileSync(object));
  if (compile.stderr !== '') store(warningsFile, compile.stderr);
  return { object: existsSync(cached) ? cached : object, warnings: compile.stderr, key: objectKey };
}

async function link(objects: readonly string[], tools: PreparedToolchain, output: string, scratch: string): Promise<Ran> {
  return runAsync([...tools.command, ...tools.linkFlags, ...objects, ...tools.runtimeObjects, '-o', output], scratch, tools.env);
}

/** Builds the snippets of one test file (see the top of this file). */
export async function buildSnippets(snippets: readonly SnippetGuest[]): Promise<FileBuild> {
  const build: FileBuild = { errors: new Map(), warnings: [] };
  const unique = [...new Map(snippets.map((s) => [snippetSymbol(s), s])).values()];
  if (unique.length === 0) return build;
  let tools: PreparedToolchain;
  try {
    tools = preparedToolchain();
  } catch (err) {
    if (!(err instanceof ToolchainError)) throw err;
    for (const s of snippets) build.errors.set(s, `${describeSnippet(s)} cannot be built: ${err.message}`);
    return build;
  }
  const cache = cacheDirectory(tools.env);
  const scratch = mkdtempSync(join(tmpdir(), 'kvmtest-snippets-'));
  try {
    const compiled = await Promise.all(unique.map((s) => compileSnippet(s, tools, cache, scratch).catch((err: Error) => ({ error: `${describeSnippet(s)} cannot be built: ${err.message}` }))));
    const good: Array<{ snippet: SnippetGuest; object: string; key: string }> = [];
    compiled.forEach((result, i) => {
      const snippet = unique[i]!;
      if ('error' in result) build.errors.set(snippet, result.error);
      else {
        good.push({ snippet, object: result.object, key: result.key });
        if (result.warnings.trim() !== '') build.warnings.push(result.warnings.trimEnd());
      }
    });
    if (good.length > 0) {
      const elf = await linkGuests(good, tools, cache, scratch, build);
      if (elf) build.elf = elf;
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  // Every snippet with a failed twin (the same code, written twice) carries its error.
  if (build.errors.size > 0) {
    const bySymbol = new Map([...build.errors].map(([snippet, error]) => [snippetSymbol(snippet), error]));
    for (const s of snippets) {
      const error = bySymbol.get(snippetSymbol(s));
      if (error !== undefined && !build.errors.has(s)) build.errors.set(s, error);
    }
  }
  return build;
}

/**
 * Links the objects into one ELF (cached), leaving out those that do not
 * link: after a failed link, each object is linked alone to find them.
 */
async function linkGuests(
  good: Array<{ snippet: SnippetGuest; object: string; key: string }>,
  tools: PreparedToolchain,
  cache: string,
  scratch: string,
  build: FileBuild,
): Promise<string | undefined> {
  const linkKey = key({ runtime: tools.runtimeKey, flags: tools.linkFlags, objects: good.map((g) => g.key).sort() });
  const cached = join(cache, 'guests', `${linkKey}.elf`);
  if (existsSync(cached)) return checkEntries(cached, good, build);
  const output = join(scratch, `${linkKey}.elf`);
  const linked = await link(good.map((g) => g.object), tools, output, scratch);
  if (linked.status !== 0) {
    const alone = await Promise.all(good.map((g, i) => link([g.object], tools, join(scratch, `alone-${i}.elf`), scratch)));
    const linkable = good.filter((g, i) => {
      if (alone[i]!.status === 0) return true;
      build.errors.set(g.snippet, `${describeSnippet(g.snippet)} failed to link:\n${alone[i]!.stderr.trimEnd()}`);
      return false;
    });
    if (linkable.length === good.length) {
      // Each links alone but not together: every one of them fails, with the linker's word.
      for (const g of good) build.errors.set(g.snippet, `the snippets of ${displayPath(g.snippet.at.file)} failed to link together:\n${linked.stderr.trimEnd()}`);
      return undefined;
    }
    return linkable.length > 0 ? linkGuests(linkable, tools, cache, scratch, build) : undefined;
  }
  store(cached, readFileSync(output));
  return checkEntries(existsSync(cached) ? cached : persistent(output), good, build);
}

/** A build kept for this process when the cache cannot keep it. */
function persistent(path: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'kvmtest-guest-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const kept = join(dir, 'guest.elf');
  writeFileSync(kept, readFileSync(path));
  return kept;
}

/** A c.unit that defines no `test` links, but has no entry: that snippet fails. */
function checkEntries(elf: string, good: ReadonlyArray<{ snippet: SnippetGuest }>, build: FileBuild): string {
  const symbols = new Set(parseElf(readFileSync(elf), elf).symbols.map((s) => s.name));
  for (const { snippet } of good) {
    if (!symbols.has(snippetSymbol(snippet))) {
      build.errors.set(snippet, `${describeSnippet(snippet)} defines no \`void test(void)\`: a c.unit's entry is its function named test`);
    }
  }
  return elf;
}
