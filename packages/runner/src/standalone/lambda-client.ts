// What `@aws-sdk/client-lambda` resolves to in the image's entry: the same classes, from the
// bundle started from V8's compiled code (cached-sdk.ts).
import { loadLambdaSdk } from './cached-sdk.js';

const { sdk } = loadLambdaSdk();

// ES modules name their exports ahead: the names of lambda-sdk.ts, checked against its type here
// and against every import of the runner by the build.

export const {
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  GetFunctionEventInvokeConfigCommand,
  GetLayerVersionByArnCommand,
  InvokeCommand,
  LambdaClient,
} = sdk;
