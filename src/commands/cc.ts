// `kvmtest cc`: compile and link test sources with the SDK (see image/toolchain.ts).
import { compileTests, sdkPaths, ToolchainError, toolchainFlags } from '../image/toolchain.js';

/** For editors and build systems: what kvmtest cc adds to a compile (with -shared: to a shared object's). */
const QUERIES: Record<string, (shared: boolean) => string> = {
  '--print-include-dir': () => sdkPaths().include,
  '--print-cflags': (shared) => toolchainFlags({ higherHalf: false, allowSimd: false, shared }).user.join(' '),
};

export async function ccCommand(args: readonly string[]): Promise<number> {
  const shared = args.includes('-shared');
  const rest = args.filter((a) => a !== '-shared');
  const query = rest.length === 1 ? QUERIES[rest[0]!] : undefined;
  if (query) {
    process.stdout.write(`${query(shared)}\n`);
    return 0;
  }
  try {
    const { status, stderr } = compileTests(args);
    process.stderr.write(stderr);
    // The compiler's own status, but never 2 (that means usage error here).
    return status === 0 ? 0 : 1;
  } catch (err) {
    if (err instanceof ToolchainError) {
      process.stderr.write(`kvmtest cc: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
