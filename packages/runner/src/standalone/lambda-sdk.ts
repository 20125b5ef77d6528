// The part of the Lambda client the runner and its protocol use, bundled on its own as CommonJS
// for the image's entry: a script V8 can start from compiled code (see cached-sdk.ts).
export {
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  GetFunctionEventInvokeConfigCommand,
  GetLayerVersionByArnCommand,
  InvokeCommand,
  LambdaClient,
} from '@aws-sdk/client-lambda';
