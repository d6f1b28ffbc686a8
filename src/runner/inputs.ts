// What `kvmtest run` runs: the test binaries and test files named, those
// found in the directories named, or, when nothing is named, those found
// under the current directory. A directory is searched through (but not
// node_modules or hidden directories) for test files (NAME.kvmtest.ts,
// .mts, .js, .mjs) and for ELF executables that hold kvmtest tests.
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ElfError, parseElf } from '../image/elf.js';
import { readBinaryFile } from '../image/read-binary.js';
import { TEST_TABLE_SECTION } from '../image/test-table.js';
import { TEST_FILE } from '../testfile/load.js';
import { BinaryError } from './discover.js';

export interface TestInput {
  kind: 'binary' | 'test-file';
  path: string;
}

const SKIPPED_DIRECTORIES = new Set(['node_modules']);
const ET_EXEC = 2;
/** Bigger files found in a search are not test binaries worth reading (a named one may be up to read-binary.ts's limit). */
const MAX_FOUND_BINARY = 64 << 20;

/** The inputs, in the order given (a directory's in path order). Throws BinaryError when a directory holds none. */
export function findTestInputs(paths: readonly string[], cwd = process.cwd()): TestInput[] {
  if (paths.length === 0) return search(cwd, cwd, true);
  return paths.flatMap((path): TestInput[] => {
    let stats;
    try {
      stats = statSync(path);
    } catch (err) {
      // A missing binary is reported by readBinaries, as any unreadable one is.
      if (!TEST_FILE.test(path)) return [{ kind: 'binary', path }];
      throw new BinaryError(`cannot read test file ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
    if (stats.isDirectory()) return search(path, cwd, false);
    return [{ kind: TEST_FILE.test(path) ? 'test-file' : 'binary', path }];
  });
}

function search(root: string, cwd: string, implicit: boolean): TestInput[] {
  const found: TestInput[] = [];
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    } catch {
      return;
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const path = join(dir, entry.name);
      // Symbolic links are not followed: they could loop, or lead out of the tree.
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRECTORIES.has(entry.name)) walk(path);
      } else if (entry.isFile()) {
        if (TEST_FILE.test(entry.name)) found.push({ kind: 'test-file', path: shown(path, cwd) });
        else if (holdsKvmtestTests(path)) found.push({ kind: 'binary', path: shown(path, cwd) });
      }
    }
  };
  walk(root);
  if (found.length === 0) {
    const where = implicit ? `the current directory (${cwd})` : root;
    throw new BinaryError(
      `no tests found under ${where}: kvmtest run looks for test files (NAME.kvmtest.ts, .mts, .js, .mjs) and for test binaries ` +
        'built with `kvmtest cc`, skipping node_modules and hidden directories; name the files or directories to run',
    );
  }
  return found;
}

function shown(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return rel.startsWith('..') ? path : rel;
}

/** An ELF executable with a kvmtest test table: read only as far as needed to tell. */
function holdsKvmtestTests(path: string): boolean {
  const header = new Uint8Array(18);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    if (readSync(fd, header, 0, header.length, 0) < header.length) return false;
  } finally {
    closeSync(fd);
  }
  const isElf = header[0] === 0x7f && header[1] === 0x45 && header[2] === 0x4c && header[3] === 0x46 && header[4] === 2;
  if (!isElf || (header[16]! | (header[17]! << 8)) !== ET_EXEC) return false;
  try {
    if (statSync(path).size > MAX_FOUND_BINARY) return false;
    return parseElf(readBinaryFile(path, path), path).sections.some((s) => s.name === TEST_TABLE_SECTION);
  } catch (err) {
    if (err instanceof ElfError || err instanceof Error) return false;
    throw err;
  }
}
