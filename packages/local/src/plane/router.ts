import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AuditedCall, accessKeyOf } from '../audit.js';
import { ApiError } from '../errors.js';
import { ACCOUNT } from '../registry.js';
import type { EcsApi } from './ecs-api.js';
import type { EventRules } from './event-rules.js';
import { answerEcs, answerLambda, ECS_TARGET, notServed, readBody } from './http.js';
import type { LambdaApi } from './lambda-api.js';
import type { Faults, KnownResources, LocalTask } from './model.js';
import { answerEc2, answerIam } from './query-apis.js';
import { type LocalQueues, SqsError } from './queues.js';
import { signatureProblem } from './signature.js';
import { answerEvents, answerSns, answerSqs, type Delivery, EVENTS_TARGET, SQS_TARGET } from './sinks.js';
import { answerQueueCall } from './sqs-api.js';

/**
 * An ECS request as the plane received it.
 *
 * @example
 * ```ts
 * import type { EcsRequest } from '@immortal-lambda/local';
 * const runTasks = (requests: EcsRequest[]) => requests.filter((r) => r.action === 'RunTask').map((r) => r.body);
 * ```
 */
export interface EcsRequest {
  action: string;
  body: Record<string, unknown>;
}

/** What the plane's routes answer with and record into. */
export interface Routes {
  ecs: EcsApi;
  lambda: LambdaApi;
  region: string;
  /** Every API call, in order. */
  calls: string[];
  /** Every ECS request as sent. */
  requests: EcsRequest[];
  faults: () => Faults;
  /** RunTask requests held unanswered (the `hang` fault), until the plane stops. */
  hanging: Set<ServerResponse>;
  /** The plane's SQS queues, for the calls on them (receive, delete, visibility, attributes). */
  queues: LocalQueues;
  /** Records a message sent to SQS, SNS, EventBridge or a function's asynchronous invocation. */
  deliver: (delivery: Delivery) => void;
  task: (id: string) => LocalTask | undefined;
  /** The `Host` values the plane answers (its own names and port): any other is refused. */
  hosts: () => ReadonlySet<string>;
  /** Decides IAM's SimulatePrincipalPolicy, call by call (none: every call allowed). */
  simulate: ((call: AuditedCall) => boolean) | undefined;
  /** The clusters, subnets and endpoints that exist. */
  network: KnownResources;
  /** The rules of the default event bus. */
  rules: EventRules;
  /** The secret every key the plane hands out signs with; given, unsigned requests are refused. */
  signingSecret: string | undefined;
  /** Records a call as IAM authorises it; throws the service's denial when `authorize` refuses it. */
  record: (action: string, resource: string, accessKeyId: string | undefined) => void;
}

/**
 * Routes a request to the API it is for: ECS (JSON 1.1 by `X-Amz-Target`), the destinations
 * (SQS, EventBridge, SNS), Lambda (REST), the task metadata endpoint, or a code download.
 */
export async function route(
  request: IncomingMessage,
  response: ServerResponse,
  routes: Routes,
): Promise<void> {
  // A web page can point a name of its own at 127.0.0.1 (DNS rebinding) and reach the plane from
  // the browser: such a request carries the page's host name, and is refused.
  const host = String(request.headers.host ?? '');
  if (!routes.hosts().has(host)) {
    response.writeHead(403, {
      'content-type': 'application/json',
      'x-amzn-errortype': 'AccessDeniedException',
    });
    response.end(
      JSON.stringify({
        message: `the local control plane answers only its own host names (${[...routes.hosts()].join(', ')}), not ${host || 'a request without Host'}`,
      }),
    );
    request.resume();
    return;
  }
  const url = new URL(request.url ?? '/', 'http://local');
  if (routes.signingSecret && !unsignedByDesign(request, url)) {
    const problem = signatureProblem(request, await readBody(request), routes.signingSecret, Date.now());
    if (problem) {
      const missing = !request.headers.authorization;
      response.writeHead(403, {
        'content-type': 'application/json',
        'x-amzn-errortype': missing ? 'MissingAuthenticationTokenException' : 'InvalidSignatureException',
      });
      response.end(
        JSON.stringify({
          __type: missing ? 'MissingAuthenticationTokenException' : 'InvalidSignatureException',
          message: problem,
        }),
      );
      return;
    }
  }
  const target = String(request.headers['x-amz-target'] ?? '');
  if (request.method === 'POST' && target.startsWith(ECS_TARGET))
    return routeEcs(request, response, routes, target);
  if (request.method === 'POST' && (await routeDestination(request, response, routes, target, url))) return;
  if (request.method === 'GET' && routeGet(request, response, routes, url)) return;
  notServed(response, request.method, url.pathname);
}

/**
 * What AWS serves without a signature: a code download (its URL is the credential, as a
 * presigned one is) and the task metadata endpoint (ECS's is reachable from the task only).
 */
function unsignedByDesign(request: IncomingMessage, url: URL): boolean {
  return (
    request.method === 'GET' &&
    (/^\/code\/[0-9a-f]+$/.test(url.pathname) || /^\/v4\/[0-9a-f]+\/task$/.test(url.pathname))
  );
}

async function routeEcs(
  request: IncomingMessage,
  response: ServerResponse,
  routes: Routes,
  target: string,
): Promise<void> {
  const action = target.slice(ECS_TARGET.length);
  const text = await readBody(request);
  routes.calls.push(`ECS.${action}`);
  const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
  routes.requests.push({ action, body });
  try {
    routes.ecs.audit(action, body, accessKeyOf(request));
  } catch (error) {
    // Denied: answered before anything is done.
    answerEcs(response, () => {
      throw error;
    });
    return;
  }
  const faults = routes.faults();
  if (faults.latencyMs) await new Promise((resolve) => setTimeout(resolve, faults.latencyMs));
  if (action === 'RunTask' && faults.hang) {
    routes.hanging.add(response);
    response.on('close', () => routes.hanging.delete(response));
    return;
  }
  answerEcs(response, () => routes.ecs.answer(action, body));
}

/** SQS, EventBridge, SNS and asynchronous Lambda invocations: the destinations, recorded. Returns whether it answered. */
async function routeDestination(
  request: IncomingMessage,
  response: ServerResponse,
  routes: Routes,
  target: string,
  url: URL,
): Promise<boolean> {
  const key = accessKeyOf(request);
  if (target.startsWith(SQS_TARGET)) {
    const body = JSON.parse((await readBody(request)) || '{}') as Record<string, unknown>;
    const action = target.slice(SQS_TARGET.length);
    routes.calls.push(`SQS.${action}`);
    // A batch call is authorised as its single action (sqs:DeleteMessage for DeleteMessageBatch).
    const authorised = `sqs:${action.replace(/Batch$/, '')}`;
    if (denied(response, 'sqs', () => routes.record(authorised, queueArn(body.QueueUrl, routes.region), key)))
      return true;
    if (action === 'SendMessage') answerSqs(action, body, routes.deliver, response);
    else answerQueue(response, () => answerQueueCall(routes.queues, action, body));
    return true;
  }
  if (target.startsWith(EVENTS_TARGET)) {
    const body = JSON.parse((await readBody(request)) || '{}') as Record<string, unknown>;
    const action = target.slice(EVENTS_TARGET.length);
    routes.calls.push(`EventBridge.${action}`);
    if (action === 'ListRules' || action === 'ListTargetsByRule') {
      // ListRules is authorised on rules of the bus (`rule/*`), ListTargetsByRule on the rule.
      const rule = action === 'ListRules' ? '*' : String(body.Rule);
      if (denied(response, 'events', () => routes.record(`events:${action}`, routes.rules.arn(rule), key)))
        return true;
      routes.rules.answer(action, body, response);
      return true;
    }
    const buses = ((body.Entries as { EventBusName?: string }[] | undefined) ?? []).map((entry) =>
      eventBusArn(entry.EventBusName, routes.region),
    );
    if (
      denied(response, 'events', () => {
        for (const bus of new Set(buses)) routes.record('events:PutEvents', bus, key);
      })
    )
      return true;
    answerEvents(target.slice(EVENTS_TARGET.length), body, routes.deliver, response);
    return true;
  }
  if (url.pathname === '/' && !target) {
    const form = new URLSearchParams(await readBody(request));
    const action = String(form.get('Action'));
    // The query protocol: IAM and EC2 (what `immortal-lambda doctor` reads) beside SNS.
    if (action === 'SimulatePrincipalPolicy') {
      routes.calls.push(`IAM.${action}`);
      answerIam(form, routes.simulate, response);
      return true;
    }
    if (action.startsWith('Describe')) {
      routes.calls.push(`EC2.${action}`);
      answerEc2(form, routes.network, response);
      return true;
    }
    routes.calls.push(`SNS.${form.get('Action')}`);
    if (denied(response, 'sns', () => routes.record('sns:Publish', String(form.get('TopicArn') ?? ''), key)))
      return true;
    answerSns(form, routes.deliver, response);
    return true;
  }
  const invoke = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(url.pathname);
  if (!invoke?.[1]) return false;
  const name = decodeURIComponent(invoke[1]);
  const payload = await readBody(request);
  routes.calls.push('Lambda.Invoke');
  answerLambda(
    response,
    () => {
      routes.lambda.invoke(name, request.headers, accessKeyOf(request));
      routes.deliver({ service: 'lambda', target: name, payload });
      return {};
    },
    202,
  );
  return true;
}

/** Answers an SQS call on the plane's queues in JSON 1.0, SQS's errors as SQS sends them. */
function answerQueue(response: ServerResponse, answer: () => unknown): void {
  try {
    const payload = answer();
    response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
    response.end(JSON.stringify(payload));
  } catch (error) {
    if (!(error instanceof SqsError)) throw error;
    response.writeHead(400, {
      'content-type': 'application/x-amz-json-1.0',
      'x-amzn-query-error': `${error.queryCode};Sender`,
    });
    response.end(JSON.stringify({ __type: `com.amazonaws.sqs#${error.code}`, message: error.message }));
  }
}

/** An SQS queue URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`) as the queue's ARN. */
function queueArn(queueUrl: unknown, region: string): string {
  const [account, name] = new URL(String(queueUrl ?? ''), 'http://local').pathname.split('/').filter(Boolean);
  return `arn:aws:sqs:${region}:${account ?? ''}:${name ?? ''}`;
}

/** An event bus by name or ARN (no name: the default bus) as its ARN. */
function eventBusArn(bus: string | undefined, region: string): string {
  if (bus?.startsWith('arn:')) return bus;
  return `arn:aws:events:${region}:${ACCOUNT}:event-bus/${bus ?? 'default'}`;
}

/**
 * Runs a destination's authorisation; when it is refused, answers as that service answers an
 * access denial (SQS `AccessDenied` 403, EventBridge `AccessDeniedException` 400, SNS
 * `AuthorizationError` 403) and returns true.
 */
function denied(response: ServerResponse, service: 'sqs' | 'events' | 'sns', check: () => void): boolean {
  try {
    check();
    return false;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (service === 'sns') {
      response.writeHead(403, { 'content-type': 'text/xml' });
      response.end(
        `<ErrorResponse><Error><Type>Sender</Type><Code>AuthorizationError</Code><Message>${error.message}</Message></Error></ErrorResponse>`,
      );
    } else if (service === 'sqs') {
      response.writeHead(403, {
        'content-type': 'application/x-amz-json-1.0',
        'x-amzn-query-error': 'AccessDenied;Sender',
      });
      response.end(JSON.stringify({ __type: 'com.amazonaws.sqs#AccessDenied', message: error.message }));
    } else {
      response.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(JSON.stringify({ __type: 'AccessDeniedException', message: error.message }));
    }
    return true;
  }
}

/** The task metadata endpoint, Lambda's GET actions, and code downloads. Returns whether it answered. */
function routeGet(request: IncomingMessage, response: ServerResponse, routes: Routes, url: URL): boolean {
  const accessKeyId = accessKeyOf(request);
  const metadata = /^\/v4\/([0-9a-f]+)\/task$/.exec(url.pathname);
  if (metadata?.[1]) {
    serveMetadata(routes.task(metadata[1]), routes.region, response);
    return true;
  }
  const invokeConfig = /^\/2019-09-25\/functions\/([^/]+)\/event-invoke-config$/.exec(url.pathname);
  if (invokeConfig?.[1]) {
    const name = decodeURIComponent(invokeConfig[1]);
    routes.calls.push('Lambda.GetFunctionEventInvokeConfig');
    answerLambda(response, () => routes.lambda.eventInvokeConfig(name, url, accessKeyId));
    return true;
  }
  const configuration = /^\/2015-03-31\/functions\/([^/]+)\/configuration$/.exec(url.pathname);
  if (configuration?.[1]) {
    const name = decodeURIComponent(configuration[1]);
    routes.calls.push('Lambda.GetFunctionConfiguration');
    answerLambda(response, () => routes.lambda.getConfiguration(name, url, accessKeyId));
    return true;
  }
  const fn = /^\/2015-03-31\/functions\/([^/]+)$/.exec(url.pathname);
  if (fn?.[1]) {
    const name = decodeURIComponent(fn[1]);
    routes.calls.push('Lambda.GetFunction');
    answerLambda(response, () => routes.lambda.getFunction(name, url, accessKeyId));
    return true;
  }
  if (url.pathname === '/2018-10-31/layers' && url.searchParams.get('find') === 'LayerVersion') {
    routes.calls.push('Lambda.GetLayerVersionByArn');
    answerLambda(response, () => routes.lambda.getLayer(url.searchParams.get('Arn') ?? '', accessKeyId));
    return true;
  }
  const code = /^\/code\/([0-9a-f]+)$/.exec(url.pathname);
  if (!code?.[1]) return false;
  routes.lambda.serveCode(code[1], request.headers.range, response);
  return true;
}

/** The ECS task metadata endpoint's `task` document, which the runner reads its task ARN from. */
function serveMetadata(task: LocalTask | undefined, region: string, response: ServerResponse): void {
  if (!task) {
    response.writeHead(404).end();
    return;
  }
  response.writeHead(200, { 'content-type': 'application/json' });
  response.end(
    JSON.stringify({
      Cluster: task.clusterArn,
      TaskARN: task.arn,
      Family: task.family,
      DesiredStatus: task.desiredStatus,
      KnownStatus: task.lastStatus,
      LaunchType: 'FARGATE',
      CapacityProviderName: task.capacityProvider,
      AvailabilityZone: `${region}a`,
    }),
  );
}
