import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.shared';

export default defineConfig(
  packageBuild({ index: 'src/index.ts', doctor: 'src/doctor/index.ts' }, { cli: 'src/doctor/cli.ts' }, [
    /^aws-cdk-lib/,
    'constructs',
  ]),
);
