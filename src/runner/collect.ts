// The runner's side of loading test files: it starts a collector process
// (collect-main.ts), which imports the files and builds their snippets, and
// gathers each file's tests. A file that cannot be loaded is a
// TestFileError (exit status 2, like an unusable binary); its snippets'
// build errors belong to single tests and arrive as their setupError.
import { fork } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheDirectory } from '../image/runtime-cache.js';
import { TestFileError } from '../testfile/load.js';
import type { TestCase } from './types.js';

export interface CollectMessage {
  type: 'collect';
  files: string[];
}

export type FromCollector =
  | { type: 'file'; file: string; tests: TestCase[]; warnings: string[] }
  | { type: 'file'; file: string; error: string }
  | { type: 'done' };

export interface CollectedFile {
  tests: TestCase[];
  /** What the compiler said about snippets that built, to show the user. */
  warnings: string[];
}

const COLLECTOR_SCRIPT = new URL('./collect-main.js', import.meta.url);
const STDERR_TAIL = 4096;

/**
 * Makes sure the build cache can be written; where it cannot, builds go
 * to a directory kept for this run (every process of the run reads
 * KVMTEST_CACHE_DIR, so they all find the same builds).
 */
export function ensureBuildCache(env: NodeJS.ProcessEnv = process.env): void {
  const dir = cacheDirectory(env);
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch {
    const temporary = mkdtempSync(join(tmpdir(), 'kvmtest-cache-'));
    process.once('exit', () => rmSync(temporary, { recursive: true, force: true }));
    env['KVMTEST_CACHE_DIR'] = temporary;
  }
}

/** Loads the test files (in a child process) and returns each one's tests, in the files' order. */
export async function collectTestFiles(files: readonly string[]): Promise<Map<string, CollectedFile>> {
  const collected = new Map<string, CollectedFile>();
  if (files.length === 0) return collected;
  ensureBuildCache();
  const child = fork(COLLECTOR_SCRIPT, [], { serialization: 'advanced', stdio: ['ignore', 2, 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    process.stderr.write(chunk);
    stderr = (stderr + chunk).slice(-STDERR_TAIL);
  });
  const failures: string[] = [];
  await new Promise<void>((resolve, reject) => {
    let done = false;
    child.on('message', (message: FromCollector) => {
      if (message.type === 'done') {
        done = true;
        return;
      }
      if ('error' in message) failures.push(message.error);
      else collected.set(message.file, { tests: message.tests, warnings: message.warnings });
    });
    child.on('error', (err) => reject(new TestFileError(`cannot start the process that loads test files: ${err.message}`)));
    child.on('exit', (code, signal) => {
      if (done && code === 0) resolve();
      else reject(new TestFileError(`the process that loads test files ${signal ? `was killed by ${signal}` : `exited with status ${code}`} before it finished${stderr.trim() ? '' : ' (it wrote nothing)'}`));
    });
    child.send({ type: 'collect', files: [...files] } satisfies CollectMessage);
  });
  if (failures.length > 0) throw new TestFileError(failures.join('\n'));
  return collected;
}
