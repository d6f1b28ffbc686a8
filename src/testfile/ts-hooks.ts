// Module hooks (node:module register) that let Node load TypeScript test
// files as they are, with no build step: .ts and .mts files are stripped of
// their types by Sucrase (which keeps every line where it was, so stack
// traces and the lines of c`` snippets stay right) and loaded as ES
// modules. Two resolution conveniences: `./helpers.js` finds helpers.ts
// (TypeScript's own convention), and `import 'kvmtest'` from a file with no
// kvmtest in its node_modules (a global install) finds this copy.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { transform } from 'sucrase';
import { displayPath } from './location.js';

const OWN_PACKAGE = new URL('../index.js', import.meta.url).href;
const TYPESCRIPT = /\.m?ts$/;

interface ResolveResult {
  url: string;
  format?: string | null;
  shortCircuit?: boolean;
}
interface ResolveContext {
  parentURL?: string;
}
type NextResolve = (specifier: string, context: ResolveContext) => Promise<ResolveResult>;

export async function resolve(specifier: string, context: ResolveContext, nextResolve: NextResolve): Promise<ResolveResult> {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    if (specifier === 'kvmtest') return { url: OWN_PACKAGE, shortCircuit: true };
    const parent = context.parentURL;
    if (parent && /^\.\.?\//.test(specifier) && /\.m?js$/.test(specifier)) {
      const candidate = new URL(specifier.replace(/js$/, 'ts'), parent);
      if (existsSync(fileURLToPath(candidate))) return { url: candidate.href, shortCircuit: true };
    }
    throw err;
  }
}

interface LoadResult {
  format: string;
  source?: string | ArrayBuffer | Uint8Array;
  shortCircuit?: boolean;
}
type NextLoad = (url: string, context: object) => Promise<LoadResult>;

export async function load(url: string, context: object, nextLoad: NextLoad): Promise<LoadResult> {
  if (!url.startsWith('file:') || !TYPESCRIPT.test(new URL(url).pathname)) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const source = await readFile(path, 'utf8');
  let code: string;
  try {
    ({ code } = transform(source, { transforms: ['typescript'], disableESTransforms: true }));
  } catch (err) {
    throw syntaxError(path, err);
  }
  return { format: 'module', source: code, shortCircuit: true };
}

/**
 * Sucrase's parse error as "FILE:LINE:COLUMN: what", without its stack
 * (the frames of Sucrase's parser say nothing about the mistake).
 */
function syntaxError(path: string, err: unknown): unknown {
  const loc = (err as { loc?: { line: number; column: number } }).loc;
  if (!(err instanceof SyntaxError) || !loc) return err;
  const what = err.message.replace(/ \(\d+:\d+\)$/, '');
  const error = new SyntaxError(`${displayPath(path)}:${loc.line}:${loc.column}: ${what}`);
  error.stack = `SyntaxError: ${error.message}`;
  return error;
}
