import type { ServerResponse } from 'node:http';
import { ACCOUNT } from '../registry.js';

/**
 * An EventBridge rule on the default bus, as a deployment made it: what `immortal-lambda doctor`
 * reads to find the safety net's rule.
 *
 * @example
 * ```ts
 * import type { EventRuleSpec } from '@immortal-lambda/local';
 * const rule: EventRuleSpec = { name: 'stopped-runner-tasks', eventPattern: { source: ['aws.ecs'] }, targets: [{ id: 'Target0', arn: watchdogArn }] };
 * ```
 */
export interface EventRuleSpec {
  name: string;
  eventPattern: unknown;
  /** Default `ENABLED`. */
  state?: 'ENABLED' | 'DISABLED';
  targets: { id: string; arn: string }[];
}

/** The rules of the plane's default bus, answered as EventBridge's ListRules and ListTargetsByRule. */
export class EventRules {
  readonly #rules = new Map<string, EventRuleSpec>();
  readonly #region: string;

  constructor(region: string) {
    this.#region = region;
  }

  register(rule: EventRuleSpec): void {
    this.#rules.set(rule.name, rule);
  }

  /** The rule's ARN, as IAM names it for `events:ListTargetsByRule`. */
  arn(name: string): string {
    return `arn:aws:events:${this.#region}:${ACCOUNT}:rule/${name}`;
  }

  /**
   * Answers ListRules (all rules, or those whose name starts with `NamePrefix`; one page: the
   * plane holds few) and ListTargetsByRule (ResourceNotFoundException for a rule that is not there).
   */
  answer(action: string, body: Record<string, unknown>, response: ServerResponse): void {
    const reply = (status: number, payload: unknown, errorType?: string) => {
      response.writeHead(status, {
        'content-type': 'application/x-amz-json-1.1',
        ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
      });
      response.end(JSON.stringify(payload));
    };
    if (action === 'ListRules') {
      const prefix = typeof body.NamePrefix === 'string' ? body.NamePrefix : '';
      const rules = [...this.#rules.values()].filter((rule) => rule.name.startsWith(prefix));
      reply(200, {
        Rules: rules.map((rule) => ({
          Name: rule.name,
          Arn: this.arn(rule.name),
          EventPattern: JSON.stringify(rule.eventPattern),
          State: rule.state ?? 'ENABLED',
          EventBusName: 'default',
        })),
      });
      return;
    }
    const rule = this.#rules.get(String(body.Rule));
    if (!rule) {
      reply(
        400,
        { message: `Rule ${String(body.Rule)} does not exist on EventBus default.` },
        'ResourceNotFoundException',
      );
      return;
    }
    reply(200, { Targets: rule.targets.map((target) => ({ Id: target.id, Arn: target.arn })) });
  }
}
