import { runUnsafeSimulation } from '@cloud-copilot/iam-simulate';
import type { AuditedCall } from '@immortal-lambda/local';
import type { SynthTemplate, TemplateNames } from './template-names.js';

/** One statement of an IAM policy document, as CDK synthesises it. */
export interface Statement {
  Effect: string;
  Action: unknown;
  Resource?: unknown;
  NotResource?: unknown;
  Condition?: unknown;
}

/** An IAM policy document. */
export interface PolicyDocument {
  Version: string;
  Statement: Statement[];
}

/**
 * Evaluates one recorded call against identity policies with the IAM simulator, on the resource
 * AWS really evaluates. A call AWS authorises on "*" is evaluated on the literal "*": only a
 * statement whose Resource holds "*" can allow it (the simulator would otherwise read the "*" of
 * the request as a pattern that any resource of the action overlaps).
 *
 * @example
 * ```ts
 * const allowed = evaluate(call, policies, roleArn, '123456789012') === 'Allowed';
 * ```
 */
export function evaluate(
  call: AuditedCall,
  documents: PolicyDocument[],
  principal: string,
  accountId: string,
): string {
  const literal = (document: PolicyDocument): PolicyDocument => ({
    ...document,
    Statement: document.Statement.flatMap((statement) => {
      if (statement.Resource === undefined) return [statement];
      const resources = ([] as unknown[]).concat(statement.Resource).filter((resource) => resource === '*');
      return resources.length > 0 ? [{ ...statement, Resource: resources }] : [];
    }),
  });
  return runUnsafeSimulation(
    {
      request: {
        principal,
        action: call.action,
        resource: { resource: call.resource, accountId },
        contextVariables: call.context,
      },
      identityPolicies: documents.map((document, index) => ({
        name: `policy-${index}`,
        policy: call.resource === '*' ? literal(document) : document,
      })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  );
}

/**
 * The identity policies attached to a role of the template, with the names resolved.
 *
 * @example
 * ```ts
 * const policies = policiesOfRole(template, new TemplateNames(template), 'ReportServiceRole1C2A3B4D');
 * ```
 */
export function policiesOfRole(
  template: SynthTemplate,
  names: TemplateNames,
  roleId: string,
): PolicyDocument[] {
  // The role's inline policies, and the managed policies of this template attached to it (by the
  // policy's Roles, or the role's ManagedPolicyArns); AWS's own managed policies (logging) are not read.
  const attached = new Set(
    ((template.Resources[roleId]?.Properties?.ManagedPolicyArns ?? []) as { Ref?: string }[]).flatMap(
      (arn) => (arn.Ref ? [arn.Ref] : []),
    ),
  );
  return Object.entries(template.Resources)
    .filter(
      ([id, resource]) =>
        (resource.Type === 'AWS::IAM::Policy' || resource.Type === 'AWS::IAM::ManagedPolicy') &&
        (attached.has(id) ||
          ((resource.Properties?.Roles ?? []) as { Ref?: string }[]).some((role) => role.Ref === roleId)),
    )
    .map(([, resource]) => names.resolve(resource.Properties?.PolicyDocument) as PolicyDocument);
}

/**
 * S3's own question before it answers a missing key: may the caller list the whole bucket? A
 * role granted listing by prefix only is refused it, and then gets 403 for a missing key.
 *
 * @example
 * ```ts
 * const unexpected = deployment.refused.filter((call) => !isBucketWideListing(call));
 * ```
 */
export function isBucketWideListing(call: AuditedCall): boolean {
  return call.action === 's3:ListBucket' && !('s3:prefix' in call.context);
}
