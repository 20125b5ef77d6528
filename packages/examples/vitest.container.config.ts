import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Needs podman and the images container/test.sh (in the runner package) builds.
    include: ['tests/container/**/*.test.ts'],
    environment: 'node',
    testTimeout: 180_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
