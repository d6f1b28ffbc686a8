// The SDK runtime's object files, compiled once per compiler and flags and
// kept in a cache directory: compiling the runtime takes far longer than a
// user's test file, and it only changes when the compiler, the flags or the
// SDK do. Every kvmtest cc run asks for them by key; a cache that cannot be
// written is simply not used.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/** Where compiled runtimes are kept: $KVMTEST_CACHE_DIR, else $XDG_CACHE_HOME/kvmtest, else ~/.cache/kvmtest. */
export function cacheDirectory(env: NodeJS.ProcessEnv = process.env): string {
  if (env['KVMTEST_CACHE_DIR']) return env['KVMTEST_CACHE_DIR'];
  return join(env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'kvmtest');
}

/** What makes one runtime build differ from another. */
export interface RuntimeKeyParts {
  /** The compiler's command line ("ccache gcc") and what it says of its version. */
  command: readonly string[];
  version: string;
  flags: readonly string[];
  /** Every file the runtime is built from: its sources and the SDK's headers. */
  files: readonly string[];
}

export function runtimeKey(parts: RuntimeKeyParts): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ command: parts.command, version: parts.version, flags: parts.flags }));
  for (const file of [...parts.files].sort()) hash.update(file).update('\0').update(readFileSync(file));
  return hash.digest('hex').slice(0, 32);
}

/** The `.o` files in a directory, sorted. */
export function objectsIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.o'))
    .sort()
    .map((f) => join(dir, f));
}

const COMPLETE = 'complete';

/** The cached build for `key`, if a complete one exists. */
export function cachedRuntime(key: string, env: NodeJS.ProcessEnv): string[] | undefined {
  const dir = join(cacheDirectory(env), 'runtime', key);
  return existsSync(join(dir, COMPLETE)) ? objectsIn(dir) : undefined;
}

/**
 * Moves a finished build directory into the cache under `key` and returns
 * its objects there; returns undefined (the build stays where it is) when
 * the cache cannot take it. The marker is written before the rename, so a
 * concurrent kvmtest cc sees all of a build or none of it.
 */
export function storeRuntime(key: string, build: string, env: NodeJS.ProcessEnv): string[] | undefined {
  const dir = join(cacheDirectory(env), 'runtime', key);
  try {
    mkdirSync(dirname(dir), { recursive: true });
    writeFileSync(join(build, COMPLETE), '');
    renameSync(build, dir);
    return objectsIn(dir);
  } catch {
    // Another build got there first (the rename fails on a non-empty
    // directory) or the cache is read-only: use this build, uncached.
    rmSync(join(build, COMPLETE), { force: true });
    return cachedRuntime(key, env);
  }
}

/** Every .h file under `dir`. */
export function headersUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? headersUnder(join(dir, entry.name)) : entry.name.endsWith('.h') ? [join(dir, entry.name)] : [],
  );
}
