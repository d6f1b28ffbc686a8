// What a worker process has loaded: for each test binary (a shared object's
// tests run in mirror mode), or test file, and
// set of execution options, the executor that runs its tests. A worker may
// run tens of thousands of distinct tests over its life, so what is kept is
// per binary, never per test: a C test's record is read afresh for every
// run (reading one costs less than keeping them all) and dropped with its
// result.
import { type ElfFile, parseElf } from '../image/elf.js';
import { imageFromElf } from '../image/image.js';
import { readBinaryFile } from '../image/read-binary.js';
import { isSharedObject, SharedObjectError, sharedObjectFromElf } from '../image/shared-object.js';
import { RUNTIME_ENTRY, testRecordReader } from '../image/test-table.js';
import { loadMirrorLibrary } from '../mirror/library.js';
import { getKvm, getRunTimer } from '../session/host.js';
import { testCaseFor } from '../testfile/cases.js';
import { loadTestFile, TEST_FILE } from '../testfile/load.js';
import { BinaryExecutor, type ExecutionOptions } from './executor.js';
import { SharedObjectExecutor } from './mirror-executor.js';
import { StrayErrors } from './stray-errors.js';
import { TestFileExecutor } from './test-file-executor.js';
import type { TestCase, TestResult } from './types.js';

export interface LoadedBinary {
  /** Runs one test; a TypeScript test's callbacks and check may make it wait. */
  run(test: TestCase): TestResult | Promise<TestResult>;
  close(): void;
  /** Reads a test by the address of its record, or its place in a test file (the runner checked them all). */
  test(record: bigint): TestCase;
}

export class WorkerBinaries {
  private readonly loaded = new Map<string, LoadedBinary>();
  private readonly stray = new StrayErrors();
  private strayInstalled = false;

  /** A test binary's or test file's executor; `guestElf` is a test file's built snippets. */
  async load(binary: string, execution: ExecutionOptions, guestElf?: string): Promise<LoadedBinary> {
    const key = `${JSON.stringify(execution, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}:${guestElf ?? ''}:${binary}`;
    let found = this.loaded.get(key);
    if (!found) {
      found = TEST_FILE.test(binary) ? await this.loadTestFile(binary, execution, guestElf) : this.loadBinary(binary, execution);
      this.loaded.set(key, found);
    }
    return found;
  }

  /** Drops every machine (after a host-side error, or at exit). */
  closeAll(): void {
    for (const loaded of this.loaded.values()) loaded.close();
  }

  private loadBinary(binary: string, execution: ExecutionOptions): LoadedBinary {
    const elf = parseElf(readBinaryFile(binary, `test binary ${binary}`), binary, { allowShared: true });
    if (isSharedObject(elf)) return this.loadSharedObject(binary, elf, execution);
    const executor = new BinaryExecutor(getKvm(), getRunTimer(), imageFromElf(elf), execution);
    return { run: (test) => executor.run(test), close: () => executor.close(), test: testRecordReader(elf, binary) };
  }

  /** A shared object of tests (kvmtest cc -shared): loaded into this process, its tests run in mirror mode. */
  private loadSharedObject(binary: string, elf: ElfFile, execution: ExecutionOptions): LoadedBinary {
    const shared = sharedObjectFromElf(elf, binary);
    if (shared.entry === undefined) throw new SharedObjectError(`${binary} does not export ${RUNTIME_ENTRY}: build it with \`kvmtest cc -shared\``);
    const executor = new SharedObjectExecutor(getKvm(), getRunTimer(), loadMirrorLibrary(binary), shared.entry, execution);
    return { run: (test) => executor.run(test), close: () => executor.close(), test: testRecordReader(elf, binary) };
  }

  private async loadTestFile(file: string, execution: ExecutionOptions, guestElf: string | undefined): Promise<LoadedBinary> {
    if (!this.strayInstalled) {
      this.stray.install();
      this.strayInstalled = true;
    }
    const loaded = await loadTestFile(file);
    const executor = new TestFileExecutor(getKvm(), getRunTimer(), loaded, execution, guestElf, this.stray);
    const cases = new Map<bigint, TestCase>();
    return {
      run: (test) => executor.run(test),
      close: () => executor.close(),
      // The runner sends the test's place in the file; the rest of the case is what the worker needs to judge it.
      test: (record) => {
        let test = cases.get(record);
        if (!test) {
          const declaration = loaded.tests[Number(record)];
          test = testCaseFor(file, Number(record), declaration);
          cases.set(record, test);
        }
        return test;
      },
    };
  }
}
