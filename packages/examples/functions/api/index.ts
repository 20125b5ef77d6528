import { withFargateFallback } from '@immortal-lambda/middleware';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from 'aws-lambda';
import { pause } from '../../lib/pause.js';

/**
 * An HTTP endpoint that exports a dataset. Small exports answer 200 with the result; one that
 * would outlast API Gateway's 29 s answers 202 with the task that finishes it.
 */
export const handler = withFargateFallback(
  async (event: APIGatewayProxyEventV2, _context, { signal }): Promise<APIGatewayProxyResultV2> => {
    const rows = Number(event.queryStringParameters?.rows ?? '1000');
    for (let done = 0; done < rows; done += 1000) await pause(100, signal);
    return { statusCode: 200, body: JSON.stringify({ exported: rows }) };
  },
  {
    handoffResponse: (receipt) => ({
      statusCode: 202,
      headers: { 'content-type': 'application/json' },
      // A handoff that met Fargate's launch rate is queued: its task starts shortly after.
      body: JSON.stringify({
        status: 'accepted',
        requestId: receipt.requestId,
        ...(receipt.status === 'handed-off' ? { taskArn: receipt.taskArn } : { queued: true }),
      }),
    }),
  },
);
