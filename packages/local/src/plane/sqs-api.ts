import { createHash } from 'node:crypto';
import { type LocalQueues, SqsError } from './queues.js';

/**
 * Answers an SQS API call on a queue of the plane (JSON 1.0 bodies): ReceiveMessage,
 * DeleteMessage(Batch), ChangeMessageVisibility(Batch), GetQueueAttributes. Throws
 * {@link SqsError} for what SQS refuses; the batch calls answer their entries' failures.
 */
export function answerQueueCall(queues: LocalQueues, action: string, body: Record<string, unknown>): unknown {
  const url = String(body.QueueUrl ?? '');
  const entries = (body.Entries as Record<string, unknown>[] | undefined) ?? [];
  const each = (act: (entry: Record<string, unknown>) => void) => {
    const Successful: { Id: unknown }[] = [];
    const Failed: { Id: unknown; Code: string; Message: string; SenderFault: boolean }[] = [];
    for (const entry of entries) {
      try {
        act(entry);
        Successful.push({ Id: entry.Id });
      } catch (error) {
        if (!(error instanceof SqsError) || error.code === 'QueueDoesNotExist') throw error;
        Failed.push({ Id: entry.Id, Code: error.code, Message: error.message, SenderFault: true });
      }
    }
    return { Successful, Failed };
  };
  switch (action) {
    case 'ReceiveMessage':
      queues.requireQueue(url);
      return {
        Messages: queues.receive(url, Number(body.MaxNumberOfMessages ?? 1)).map((message) => ({
          MessageId: message.id,
          ReceiptHandle: message.receiptHandle,
          Body: message.body,
          MD5OfBody: createHash('md5').update(message.body, 'utf8').digest('hex'),
          Attributes: { ApproximateReceiveCount: String(message.receives) },
        })),
      };
    case 'DeleteMessage':
      queues.deleteReceived(url, String(body.ReceiptHandle));
      return {};
    case 'DeleteMessageBatch':
      queues.requireQueue(url);
      return each((entry) => queues.deleteReceived(url, String(entry.ReceiptHandle)));
    case 'ChangeMessageVisibility':
      queues.changeVisibility(url, String(body.ReceiptHandle), Number(body.VisibilityTimeout));
      return {};
    case 'ChangeMessageVisibilityBatch':
      queues.requireQueue(url);
      return each((entry) =>
        queues.changeVisibility(url, String(entry.ReceiptHandle), Number(entry.VisibilityTimeout)),
      );
    case 'GetQueueAttributes':
      return { Attributes: { VisibilityTimeout: String(queues.visibilityTimeoutS(url)) } };
    default:
      throw new SqsError('UnsupportedOperation', `the local control plane does not serve SQS ${action}`);
  }
}
