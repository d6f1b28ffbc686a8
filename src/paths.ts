// How paths appear in messages and reports, in one place: relative to the
// current directory when inside it (as compilers print them), else as given.
import { relative } from 'node:path';

const shownPaths = new Map<string, string>();

/** A path as messages and reports show it: relative to the current directory when inside it. */
export function displayPath(file: string): string {
  let shown = shownPaths.get(file);
  if (shown === undefined) {
    const rel = relative(process.cwd(), file);
    shown = rel === '' || rel.startsWith('..') ? file : rel;
    if (shownPaths.size < 10_000) shownPaths.set(file, shown);
  }
  return shown;
}
