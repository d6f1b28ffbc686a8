// The guest's console text, collected from the serial port and the write
// hypercall, with a cap so that a guest printing in a loop cannot exhaust
// the host's memory.
export const DEFAULT_OUTPUT_LIMIT = 1 << 20;
const utf8 = new TextDecoder();

export class ConsoleBuffer {
  private readonly chunks: Uint8Array[] = [];
  private pending: number[] = [];
  private length = 0;
  private truncated = false;

  constructor(private readonly limit = DEFAULT_OUTPUT_LIMIT) {}

  /** Appends one byte (the serial port's path: one exit per byte). */
  pushByte(byte: number): void {
    if (this.length >= this.limit) {
      this.truncated = true;
      return;
    }
    this.pending.push(byte);
    this.length++;
  }

  push(bytes: Uint8Array): void {
    this.flushPending();
    const room = this.limit - this.length;
    if (bytes.length > room) this.truncated = true;
    const kept = bytes.subarray(0, Math.max(0, room));
    if (kept.length > 0) {
      this.chunks.push(kept.slice());
      this.length += kept.length;
    }
  }

  /** Bytes it will still keep. */
  get room(): number {
    return Math.max(0, this.limit - this.length);
  }

  /** Notes output that was not kept (the text then says it was cut). */
  drop(count: number): void {
    if (count > 0) this.truncated = true;
  }

  /** Empties the buffer for reuse by the next run. */
  clear(): void {
    this.chunks.length = 0;
    this.pending = [];
    this.length = 0;
    this.truncated = false;
  }

  text(): string {
    if (this.length === 0) return '';
    this.flushPending();
    const all = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      all.set(c, at);
      at += c.length;
    }
    const text = utf8.decode(all);
    return this.truncated ? `${text}\n[kvmtest: output truncated at ${this.limit} bytes]\n` : text;
  }

  private flushPending(): void {
    if (this.pending.length === 0) return;
    this.chunks.push(Uint8Array.from(this.pending));
    this.pending = [];
  }
}
