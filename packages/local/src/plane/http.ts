import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from '../errors.js';

/** The X-Amz-Target prefix of ECS's JSON 1.1 protocol. */
export const ECS_TARGET = 'AmazonEC2ContainerServiceV20141113.';

/** A request's whole body, as text. */
export function readBody(request: IncomingMessage): Promise<string> {
  // Read once: the signature check reads the body before the API that answers it.
  const read = bodies.get(request) ?? readAll(request);
  bodies.set(request, read);
  return read;
}

const bodies = new WeakMap<IncomingMessage, Promise<string>>();

async function readAll(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Answers in ECS's JSON 1.1 protocol: the answer, or the error with its members. */
export function answerEcs(response: ServerResponse, answer: () => unknown): void {
  let body: unknown;
  try {
    body = answer();
  } catch (error) {
    const api = error instanceof ApiError ? error : new ApiError('ServerException', String(error), 500);
    response.writeHead(api.status, {
      'content-type': 'application/x-amz-json-1.1',
      'x-amzn-errortype': api.type,
    });
    response.end(JSON.stringify({ __type: api.type, message: api.message, ...api.fields }));
    return;
  }
  response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
  response.end(JSON.stringify(body));
}

/** Answers in Lambda's REST-JSON protocol: the answer, or the error type in a header. */
export function answerLambda(response: ServerResponse, answer: () => unknown, status = 200): void {
  try {
    const body = answer();
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  } catch (error) {
    const api = error instanceof ApiError ? error : new ApiError('ServiceException', String(error), 500);
    response.writeHead(api.status, { 'content-type': 'application/json', 'x-amzn-errortype': api.type });
    response.end(JSON.stringify({ Type: 'User', Message: api.message, message: api.message }));
  }
}

/** Answers a request the plane does not serve. */
export function notServed(response: ServerResponse, method: string | undefined, path: string): void {
  response.writeHead(404, {
    'content-type': 'application/json',
    'x-amzn-errortype': 'UnknownOperationException',
  });
  response.end(JSON.stringify({ message: `the local control plane does not serve ${method} ${path}` }));
}
