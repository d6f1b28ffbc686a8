// kvmtest runs guests on a process's main thread only (its timeouts are a
// signal aimed at that thread), so the test files must run in child
// processes, Vitest's forks pool, not in its worker threads ('threads',
// 'vmThreads'). Forks is Vitest's default; saying so here keeps it that way.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
  },
});
