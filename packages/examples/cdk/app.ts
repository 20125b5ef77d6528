// The example app: `pnpm --filter @immortal-lambda/examples synth` (offline). Deploy with
// `npx cdk deploy --app "npx tsx cdk/app.ts"`, which builds the runner image with Docker.
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { runnerContext } from './runner-context.js';
import { ExampleStack } from './stack.js';

const app = new App({ outdir: process.env.CDK_OUTDIR ?? 'cdk.out' });
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
new ExampleStack(app, 'ImmortalLambdaExample', {
  runnerContext: runnerContext(app.outdir),
  env: {
    account: process.env.CDK_DEFAULT_ACCOUNT ?? '123456789012',
    region: process.env.CDK_DEFAULT_REGION ?? 'eu-west-1',
  },
});
app.synth();
