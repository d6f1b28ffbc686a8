// The binaries a worker process has loaded: for each binary and set of
// execution options, its image and the executor that runs its tests. A
// worker may run tens of thousands of distinct tests over its life, so what
// is kept is per binary, never per test: a test's record is read afresh for
// every run (reading one costs less than keeping them all) and dropped with
// its result.
import { loadImage } from '../image/image.js';
import { readBinaryFile } from '../image/read-binary.js';
import { testRecordReader } from '../image/test-table.js';
import { getKvm, getRunTimer } from '../session/host.js';
import { BinaryExecutor, type ExecutionOptions } from './executor.js';
import type { TestCase } from './types.js';

export interface LoadedBinary {
  executor: BinaryExecutor;
  /** Reads a test by the address of its record (the runner already checked the whole table). */
  test(record: bigint): TestCase;
}

export class WorkerBinaries {
  private readonly loaded = new Map<string, LoadedBinary>();

  load(binary: string, execution: ExecutionOptions): LoadedBinary {
    const key = `${JSON.stringify(execution, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}:${binary}`;
    let found = this.loaded.get(key);
    if (!found) {
      const image = loadImage({ elfBytes: readBinaryFile(binary, `test binary ${binary}`), name: binary });
      found = { executor: new BinaryExecutor(getKvm(), getRunTimer(), image, execution), test: testRecordReader(image.elf!, binary) };
      this.loaded.set(key, found);
    }
    return found;
  }

  /** Drops every machine (after a host-side error, or at exit). */
  closeAll(): void {
    for (const { executor } of this.loaded.values()) executor.close();
  }
}
