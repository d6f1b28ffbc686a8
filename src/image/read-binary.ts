// Reads a file a user named as a test binary or ELF image, after refusing
// what cannot be one: anything but a regular file (a device such as
// /dev/zero would be read forever, a FIFO would block) and files too large
// to be a test binary, before a single byte is read.
import { readFileSync, statSync, type Stats } from 'node:fs';

/** Largest test binary or image kvmtest reads. */
export const MAX_BINARY_BYTES = 1 << 30;

/** Why `path` cannot be read as a binary; the message says what to do. */
export class BinaryFileError extends Error {}

function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isFIFO()) return 'a named pipe (FIFO)';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

function describeError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return (err as Error).message;
}

/** The file's bytes; throws BinaryFileError, starting with `what` ("test binary x.elf"), when it cannot be one. */
export function readBinaryFile(path: string, what: string): Uint8Array {
  let stats: Stats;
  try {
    stats = statSync(path);
  } catch (err) {
    throw new BinaryFileError(`cannot read ${what}: ${describeError(err)}`);
  }
  if (!stats.isFile()) throw new BinaryFileError(`cannot read ${what}: it is ${kindOf(stats)}, not a regular file`);
  if (stats.size > MAX_BINARY_BYTES) {
    throw new BinaryFileError(
      `cannot read ${what}: it is ${stats.size} bytes, more than the ${MAX_BINARY_BYTES / 2 ** 20} MiB a test binary may have`,
    );
  }
  try {
    return readFileSync(path);
  } catch (err) {
    throw new BinaryFileError(`cannot read ${what}: ${describeError(err)}`);
  }
}
