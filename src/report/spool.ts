// A scratch file for reporters that must write something at the end which
// they learn piece by piece (JUnit's test cases under counts known only at
// the end, pretty's failure section): they append the pieces here as results
// arrive and copy them out at the end, so their memory does not grow with
// the run. The file is unlinked as soon as it is created, so nothing is left
// behind however the process ends.
import { closeSync, mkdtempSync, openSync, readSync, rmdirSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { write, type ReportOutput } from './output.js';

/** Bytes [start, end) of a spool. */
export interface SpoolRange {
  start: number;
  end: number;
}

/** How much is read back at a time. */
const CHUNK_BYTES = 1 << 20;

export class Spool {
  private fd: number | undefined;
  private size = 0;

  /** Appends `text` (UTF-8) and says where it went. Synchronous: a local file takes it at once. */
  append(text: string): SpoolRange {
    const bytes = Buffer.from(text, 'utf8');
    const fd = this.open();
    for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done, this.size + done);
    const range = { start: this.size, end: this.size + bytes.length };
    this.size = range.end;
    return range;
  }

  /** Copies a range to `out`, a chunk at a time, waiting whenever `out` is full. */
  async copyTo(out: ReportOutput, range: SpoolRange): Promise<void> {
    if (range.end <= range.start) return;
    const fd = this.open();
    const buffer = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, range.end - range.start));
    // A chunk may end inside a UTF-8 sequence: the decoder carries it over.
    const decoder = new StringDecoder('utf8');
    for (let at = range.start; at < range.end; ) {
      const read = readSync(fd, buffer, 0, Math.min(buffer.length, range.end - at), at);
      if (read === 0) throw new Error(`the report spool ends at byte ${at}, before ${range.end}`);
      at += read;
      await write(out, decoder.write(buffer.subarray(0, read)));
    }
    const rest = decoder.end();
    if (rest) await write(out, rest);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.size = 0;
  }

  private open(): number {
    if (this.fd === undefined) {
      const dir = mkdtempSync(join(tmpdir(), 'kvmtest-spool-'));
      const path = join(dir, 'spool');
      try {
        this.fd = openSync(path, 'wx+', 0o600);
      } finally {
        try {
          unlinkSync(path);
        } catch {
          // Never created.
        }
        rmdirSync(dir);
      }
    }
    return this.fd;
  }
}
