import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Once per run: builds blog_template when db/ changed since it was built, before any test starts.
    globalSetup: ['dbfast/vitest'],
    include: ['test/vitest/**/*.test.ts'],
  },
});
