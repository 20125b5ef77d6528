import { getInvocationStatus } from '@immortal-lambda/middleware/status';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from 'aws-lambda';

const json = (statusCode: number, body: unknown): APIGatewayProxyResultV2 => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

/**
 * `GET /status/{requestId}`: what became of an export that answered 202. The exporting
 * function's name and the payload bucket come from the stack (EXPORT_FUNCTION_NAME,
 * FARGATE_FALLBACK_BUCKET).
 */
export const handler = async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyResultV2> => {
  const requestId = event.pathParameters?.requestId;
  if (!requestId) return json(400, { message: 'the path names no request id: GET /status/{requestId}' });
  const functionName = process.env.EXPORT_FUNCTION_NAME;
  if (!functionName) return json(500, { message: 'EXPORT_FUNCTION_NAME is not set on the status function' });
  const status = await getInvocationStatus({ functionName, requestId });
  if (!status) return json(404, { message: `no handed-off invocation ${requestId}` });
  return json(200, { requestId, ...status });
};
