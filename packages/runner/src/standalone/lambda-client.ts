// What `@aws-sdk/client-lambda` resolves to in the image's entry: the same classes, from the
// bundle started from V8's compiled code (cached-sdk.ts).
import { loadLambdaSdk } from './cached-sdk.js';

const { sdk } = loadLambdaSdk();

export const {
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  GetFunctionEventInvokeConfigCommand,
  GetLayerVersionByArnCommand,
  InvokeCommand,
  LambdaClient,
} = sdk;
