// Run once where the image is built, by the Node the image runs (the cache is V8's own format):
//   node dist/write-code-cache.js
// Loads the Lambda client's bundle, makes one GetFunction call through it to a server of its own
// on loopback, as a task's first call, and writes what V8 compiled beside the bundle.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadLambdaSdk, writeCodeCache } from './cached-sdk.js';

const answer = JSON.stringify({
  Configuration: {
    FunctionName: 'warm-up',
    Runtime: 'nodejs22.x',
    Handler: 'index.handler',
    PackageType: 'Zip',
  },
  Code: { Location: 'http://127.0.0.1/code.zip' },
});
const server = createServer((request, response) => {
  request.resume();
  request.on('end', () => response.writeHead(200, { 'content-type': 'application/json' }).end(answer));
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
// As on a task: region and credentials from the environment, the endpoint from AWS_ENDPOINT_URL_LAMBDA.
Object.assign(process.env, {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'warm-up',
  AWS_SECRET_ACCESS_KEY: 'warm-up',
  AWS_ENDPOINT_URL_LAMBDA: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
});
try {
  const loaded = loadLambdaSdk({ useCache: false });
  const lambda = new loaded.sdk.LambdaClient({});
  const output = await lambda.send(
    new loaded.sdk.GetFunctionCommand({ FunctionName: 'warm-up', Qualifier: '1' }),
  );
  if (output.Configuration?.FunctionName !== 'warm-up') throw new Error('the warm-up call was not answered');
  lambda.destroy();
  const bytes = writeCodeCache(loaded);
  console.log(
    `immortal-runner: wrote the Lambda client's compiled code (${bytes} bytes) for Node ${process.version}`,
  );
} finally {
  server.close();
}
