import { LocalControlPlane, type LocalS3, type LocalTask, startS3 } from '@immortal-lambda/local';
import {
  type DeployedFunctionSpec,
  type Deployment,
  deployExample,
  registerTaskDefinitions,
} from '../../lib/deployment.js';

/** One example function deployed with the construct's grants, on the local plane with real runners. */
export interface DeployedPlane {
  deployment: Deployment;
  plane: LocalControlPlane;
  s3: LocalS3;
  /** The plane's endpoints and the bucket, as the function's environment gets them. */
  env: Record<string, string>;
  /** Each runner log line, with when it was seen. */
  logs: { taskId: string; line: string; at: number }[];
  stop(): Promise<void>;
}

/**
 * Deploys one function (its spec as `deployExample` takes it, its bundle in `folder`), starts S3
 * and the plane with the deployment's grants enforced, registers the function as deployed, and
 * points this process's SDK at them.
 */
export async function deployedPlane(spec: DeployedFunctionSpec, folder: string): Promise<DeployedPlane> {
  const deployment = deployExample({ functions: [spec] });
  const s3 = await startS3({ bucket: deployment.bucket, authorize: deployment.authorize });
  const plane = new LocalControlPlane({
    s3Endpoint: s3.endpoint,
    authorize: deployment.authorize,
    clusters: [deployment.cluster],
    subnets: deployment.subnets,
  });
  registerTaskDefinitions(plane, deployment);
  plane.registerFunction({
    name: spec.name,
    folder,
    handler: 'index.handler',
    environment: deployment.functions[spec.name]?.variables ?? {},
  });
  const logs: DeployedPlane['logs'] = [];
  plane.on('task-log', ({ task, line }: { task: LocalTask; line: string }) =>
    logs.push({ taskId: task.id, line, at: Date.now() }),
  );
  await plane.start();
  const env = {
    ...plane.environment({ s3Endpoint: s3.endpoint, bucket: s3.bucket }),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  Object.assign(process.env, env);
  return {
    deployment,
    plane,
    s3,
    env,
    logs,
    stop: async () => {
      await plane.stop();
      await s3.stop();
    },
  };
}

/** Resolves with what `probe` answers once it is truthy; throws naming `what` after `timeoutMs`. */
export async function until<T>(what: string, probe: () => T, timeoutMs = 60_000): Promise<NonNullable<T>> {
  const started = Date.now();
  for (;;) {
    const value = probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
