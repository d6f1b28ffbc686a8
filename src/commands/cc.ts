// `kvmtest cc`: compile and link test sources with the SDK (see image/toolchain.ts).
import { compileTests, sdkPaths, ToolchainError, toolchainFlags } from '../image/toolchain.js';

/** For editors and build systems: what kvmtest cc adds to a compile. */
const QUERIES: Record<string, () => string> = {
  '--print-include-dir': () => sdkPaths().include,
  '--print-cflags': () => toolchainFlags({ higherHalf: false, allowSimd: false }).user.join(' '),
};

export async function ccCommand(args: readonly string[]): Promise<number> {
  const query = args.length === 1 ? QUERIES[args[0]!] : undefined;
  if (query) {
    process.stdout.write(`${query()}\n`);
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
