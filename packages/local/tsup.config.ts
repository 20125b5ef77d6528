import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.shared';

export default defineConfig(
  packageBuild(
    { index: 'src/index.ts' },
    { cli: 'src/cli.ts', 'chaos-recorder': 'src/dev/chaos-recorder.ts' },
    ['s3rver'],
  ),
);
