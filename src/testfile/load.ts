// Loads a test file (TypeScript or JavaScript) and returns the tests it
// declares, in order. TypeScript is loaded through ts-hooks.ts, registered
// once per process. A file that cannot be loaded (a syntax error, a throw
// at its top level, a top-level await that never settles) is a
// TestFileError naming the file.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import { describeUserError } from '../hardware/user-errors.js';
import { displayPath } from './location.js';
import { type Collector, collectDeclarations, type TestDeclaration } from './registry.js';

export class TestFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TestFileError';
  }
}

export { TEST_FILE } from './file-name.js';

/** How long a file may take to load (its top-level code), beyond which it is given up. */
const LOAD_TIMEOUT_MS = 60_000;

let hooksRegistered = false;

async function registerHooks(): Promise<void> {
  if (hooksRegistered) return;
  if (typeof register !== 'function') {
    throw new TestFileError(`TypeScript test files need Node.js 20.6 or later (module.register); this is ${process.version}`);
  }
  // Every import resolved once the hooks are in place is a round trip to
  // their thread: load kvmtest's own API first, which test files import.
  await import('../index.js');
  register(new URL('./ts-hooks.js', import.meta.url));
  hooksRegistered = true;
}

export interface LoadedTestFile {
  file: string;
  tests: TestDeclaration[];
}

// A module runs once per process: loading a file again must give the tests
// it declared the first time, not none.
const loadedFiles = new Map<string, Promise<LoadedTestFile>>();

/** The tests `file` declares; loaded once per process. */
export function loadTestFile(file: string): Promise<LoadedTestFile> {
  const key = pathToFileURL(file).href;
  let loading = loadedFiles.get(key);
  if (!loading) {
    loading = load(file);
    loadedFiles.set(key, loading);
  }
  return loading;
}

async function load(file: string): Promise<LoadedTestFile> {
  await registerHooks();
  const collector: Collector = { file, tests: [] };
  let timer: NodeJS.Timeout | undefined;
  try {
    await collectDeclarations(collector, () =>
      Promise.race([
        import(pathToFileURL(file).href),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new TestFileError(`${file} did not finish loading within ${LOAD_TIMEOUT_MS / 1000} s (a top-level await that never settles?)`)), LOAD_TIMEOUT_MS);
          timer.unref();
        }),
      ]),
    );
  } catch (err) {
    if (err instanceof TestFileError) throw err;
    throw new TestFileError(`cannot load test file ${file}: ${locatedSyntaxError(file, err) ?? describeUserError(err)}`);
  } finally {
    clearTimeout(timer);
  }
  return { file, tests: collector.tests };
}

/**
 * "SyntaxError: FILE:LINE:COLUMN: what" for a JavaScript test file that
 * does not parse: Node does not say where for a module loaded with
 * import(), but its syntax check does. (ts-hooks.ts reports TypeScript's.)
 * Undefined when the error is elsewhere (in a module the file imports).
 */
function locatedSyntaxError(file: string, err: unknown): string | undefined {
  if (!(err instanceof SyntaxError) || /\.m?ts$/.test(file)) return undefined;
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const check = spawnSync(process.execPath, ['--input-type=module', '--check'], { input: source, encoding: 'utf8' });
  const found = /^\[stdin\]:(\d+)\n.*\n( *)\^+\n\nSyntaxError: (.*)$/m.exec(check.stderr ?? '');
  if (!found) return undefined;
  const [, line, indent, what] = found;
  return `SyntaxError: ${displayPath(file)}:${line}:${indent!.length + 1}: ${what}`;
}
