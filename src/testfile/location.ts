// Where in a test file something was written: the first stack frame
// outside kvmtest's own test-file API. V8 reports a tagged template's call
// at the template itself, so a c`` snippet's location is its first line.
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface SourceLocation {
  /** The file's path (a file: URL made a path), or what the stack says. */
  file: string;
  /** 1-based. */
  line: number;
}

const OWN_DIR = new URL('.', import.meta.url).href;
const UNKNOWN: SourceLocation = { file: '<unknown>', line: 0 };
const FRAME = /\(?((?:file|node|data):[^\s)]+|\/[^\s)]+):(\d+):(\d+)\)?$/;

export function callerLocation(): SourceLocation {
  const stack = new Error().stack ?? '';
  for (const line of stack.split('\n').slice(1)) {
    const match = FRAME.exec(line.trim());
    if (!match) continue;
    const [, where, lineNumber] = match;
    if (where!.startsWith(OWN_DIR) || where!.startsWith(fileURLToPath(OWN_DIR))) continue;
    return { file: where!.startsWith('file:') ? fileURLToPath(where!) : where!, line: Number(lineNumber) };
  }
  return UNKNOWN;
}

/** A path as messages and reports show it: relative to the current directory when inside it. */
export function displayPath(file: string): string {
  const shown = relative(process.cwd(), file);
  return shown === '' || shown.startsWith('..') ? file : shown;
}
