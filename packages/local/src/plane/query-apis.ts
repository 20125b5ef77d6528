import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { type AuditedCall, roleAccessKey } from '../audit.js';
import type { KnownResources } from './model.js';

const xmlText = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The `member.N` values of a query-protocol list parameter, in order. */
function members(form: URLSearchParams, name: string): string[] {
  const found: string[] = [];
  for (let i = 1; form.has(`${name}.member.${i}`); i++) found.push(String(form.get(`${name}.member.${i}`)));
  return found;
}

/**
 * IAM's SimulatePrincipalPolicy, decided by the plane's `simulate` hook as IAM would decide each
 * action on each resource for the role (`PolicySourceArn`), with the context entries given; without
 * a hook every call is allowed. Only a role is taken as the principal here.
 */
export function answerIam(
  form: URLSearchParams,
  simulate: ((call: AuditedCall) => boolean) | undefined,
  response: ServerResponse,
): void {
  const action = form.get('Action');
  if (action !== 'SimulatePrincipalPolicy') {
    queryError(response, 400, 'InvalidAction', `the local control plane does not serve IAM ${action}`, 'iam');
    return;
  }
  const role = String(form.get('PolicySourceArn') ?? '');
  const context: Record<string, string> = {};
  for (let i = 1; form.has(`ContextEntries.member.${i}.ContextKeyName`); i++) {
    context[String(form.get(`ContextEntries.member.${i}.ContextKeyName`))] = String(
      form.get(`ContextEntries.member.${i}.ContextKeyValues.member.1`) ?? '',
    );
  }
  const resources = members(form, 'ResourceArns');
  const results = members(form, 'ActionNames').flatMap((name) =>
    (resources.length > 0 ? resources : ['*']).map((resource) => {
      const allowed =
        simulate?.({ action: name, resource, context, accessKeyId: roleAccessKey(role) }) ?? true;
      return `<member><EvalActionName>${xmlText(name)}</EvalActionName><EvalResourceName>${xmlText(resource)}</EvalResourceName><EvalDecision>${allowed ? 'allowed' : 'implicitDeny'}</EvalDecision></member>`;
    }),
  );
  response.writeHead(200, { 'content-type': 'text/xml' });
  response.end(
    `<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated><EvaluationResults>${results.join('')}</EvaluationResults></SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>`,
  );
}

/** The values of an EC2 filter (`Filter.N.Name` / `Filter.N.Value.M`) by its name. */
function filterValues(form: URLSearchParams, name: string): string[] | undefined {
  for (let i = 1; form.has(`Filter.${i}.Name`); i++) {
    if (form.get(`Filter.${i}.Name`) !== name) continue;
    const values: string[] = [];
    for (let j = 1; form.has(`Filter.${i}.Value.${j}`); j++)
      values.push(String(form.get(`Filter.${i}.Value.${j}`)));
    return values;
  }
  return undefined;
}

/** EC2's list parameters (`SubnetId.1`, …), in order. */
function numbered(form: URLSearchParams, name: string): string[] {
  const found: string[] = [];
  for (let i = 1; form.has(`${name}.${i}`); i++) found.push(String(form.get(`${name}.${i}`)));
  return found;
}

/**
 * EC2's DescribeSubnets, DescribeRouteTables and DescribeVpcEndpoints over the plane's network:
 * each subnet in its VPC with one route table (a default route to an internet gateway when
 * public, to a NAT gateway when `nat`, none otherwise), and the VPC's endpoints.
 */
export function answerEc2(form: URLSearchParams, known: KnownResources, response: ServerResponse): void {
  const action = String(form.get('Action'));
  const detail = (id: string) => ({
    vpcId: 'vpc-local',
    internet: 'public' as const,
    ...known.subnetDetails.get(id),
    id,
  });
  const xml = (body: string) => {
    response.writeHead(200, { 'content-type': 'text/xml' });
    response.end(
      `<${action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>${randomUUID()}</requestId>${body}</${action}Response>`,
    );
  };
  if (action === 'DescribeSubnets') {
    const asked = numbered(form, 'SubnetId');
    const missing = asked.filter((id) => !known.subnets.has(id));
    if (missing.length > 0) {
      queryError(
        response,
        400,
        'InvalidSubnetID.NotFound',
        `The subnet ID '${missing.join(', ')}' does not exist`,
        'ec2',
      );
      return;
    }
    const items = (asked.length > 0 ? asked : [...known.subnets]).map((id) => {
      const subnet = detail(id);
      return `<item><subnetId>${xmlText(id)}</subnetId><vpcId>${xmlText(subnet.vpcId)}</vpcId><state>available</state><mapPublicIpOnLaunch>${subnet.internet === 'public'}</mapPublicIpOnLaunch></item>`;
    });
    xml(`<subnetSet>${items.join('')}</subnetSet>`);
    return;
  }
  if (action === 'DescribeRouteTables') {
    const subnets = filterValues(form, 'association.subnet-id') ?? [...known.subnets];
    const items = subnets
      .filter((id) => known.subnets.has(id))
      .map((id) => {
        const subnet = detail(id);
        const target =
          subnet.internet === 'public'
            ? '<gatewayId>igw-local</gatewayId>'
            : subnet.internet === 'nat'
              ? '<natGatewayId>nat-local</natGatewayId>'
              : '';
        const route = target
          ? `<item><destinationCidrBlock>0.0.0.0/0</destinationCidrBlock>${target}<state>active</state></item>`
          : '';
        return `<item><routeTableId>rtb-${xmlText(id.replace(/^subnet-/, ''))}</routeTableId><vpcId>${xmlText(subnet.vpcId)}</vpcId><associationSet><item><subnetId>${xmlText(id)}</subnetId><main>false</main></item></associationSet><routeSet><item><destinationCidrBlock>10.0.0.0/16</destinationCidrBlock><gatewayId>local</gatewayId><state>active</state></item>${route}</routeSet></item>`;
      });
    xml(`<routeTableSet>${items.join('')}</routeTableSet>`);
    return;
  }
  if (action === 'DescribeVpcEndpoints') {
    const vpcs = filterValues(form, 'vpc-id');
    const items = known.endpoints
      .filter((endpoint) => !vpcs || vpcs.includes(endpoint.vpcId))
      .map(
        (endpoint) =>
          `<item><vpcEndpointId>vpce-${xmlText(endpoint.serviceName.split('.').pop() ?? '')}</vpcEndpointId><vpcId>${xmlText(endpoint.vpcId)}</vpcId><serviceName>${xmlText(endpoint.serviceName)}</serviceName><state>available</state></item>`,
      );
    xml(`<vpcEndpointSet>${items.join('')}</vpcEndpointSet>`);
    return;
  }
  queryError(response, 400, 'InvalidAction', `the local control plane does not serve EC2 ${action}`, 'ec2');
}

/** A query-protocol error as IAM (`ErrorResponse`) or EC2 (`Response/Errors`) writes it. */
function queryError(
  response: ServerResponse,
  status: number,
  code: string,
  message: string,
  service: 'iam' | 'ec2',
): void {
  response.writeHead(status, { 'content-type': 'text/xml' });
  response.end(
    service === 'ec2'
      ? `<Response><Errors><Error><Code>${code}</Code><Message>${xmlText(message)}</Message></Error></Errors><RequestID>${randomUUID()}</RequestID></Response>`
      : `<ErrorResponse><Error><Type>Sender</Type><Code>${code}</Code><Message>${xmlText(message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
  );
}
