import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.shared';

export default defineConfig(
  packageBuild({
    index: 'src/index.ts',
    basics: 'src/basics.ts',
    destinations: 'src/destinations.ts',
    sqs: 'src/sqs.ts',
  }),
);
