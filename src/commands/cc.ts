// `kvmtest cc`: compile and link test sources with the SDK (see image/toolchain.ts).
import { compileTests, ToolchainError } from '../image/toolchain.js';

export async function ccCommand(args: readonly string[]): Promise<number> {
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
