import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.shared';

export default defineConfig(
  packageBuild({
    index: 'src/index.ts',
    middy: 'src/middy.ts',
    protocol: 'src/protocol/index.ts',
    status: 'src/status.ts',
    'safety-net': 'src/safety-net/index.ts',
  }).map((options) => ({
    ...options,
    splitting: true,
    treeshake: true,
  })),
);
