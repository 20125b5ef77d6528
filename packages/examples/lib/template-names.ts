import { createHash } from 'node:crypto';

/** A CloudFormation template as synthesised: resources by logical id. */
export interface SynthTemplate {
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';
const hex = (text: string, length: number) =>
  createHash('sha256').update(text).digest('hex').slice(0, length);

/**
 * Gives a synthesised template concrete names, as one deployment would: every resource a
 * physical name derived from its logical id (in the shape AWS gives it: `subnet-…`, `sg-…`, a
 * lowercase bucket name), and resolves `Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Select`,
 * `Fn::Split` and the pseudo parameters to strings. The local control plane is then set up with
 * the same names, so that its recorded calls can be checked against the template's policies.
 */
export class TemplateNames {
  readonly region = REGION;
  readonly account = ACCOUNT;
  readonly #template: SynthTemplate;

  constructor(template: SynthTemplate) {
    this.#template = template;
  }

  /** The physical name (what `Ref` gives for most types) of a resource. */
  name(logicalId: string): string {
    const resource = this.#template.Resources[logicalId];
    if (!resource) throw new Error(`no resource ${logicalId} in the template`);
    const props = resource.Properties ?? {};
    switch (resource.Type) {
      case 'AWS::EC2::Subnet':
        return `subnet-${hex(logicalId, 17)}`;
      case 'AWS::EC2::SecurityGroup':
        return `sg-${hex(logicalId, 17)}`;
      case 'AWS::S3::Bucket':
        return String(props.BucketName ?? logicalId.toLowerCase().slice(0, 63));
      case 'AWS::ECS::TaskDefinition':
        return String(props.Family);
      case 'AWS::ECS::Cluster':
        return String(props.ClusterName ?? logicalId.slice(0, 64));
      case 'AWS::SQS::Queue':
        return String(props.QueueName ?? logicalId.slice(0, 80));
      case 'AWS::Lambda::Function':
        return String(props.FunctionName ?? logicalId.slice(0, 64));
      case 'AWS::KMS::Key':
        return `${hex(logicalId, 8)}-${hex(logicalId, 4)}-${hex(logicalId, 4)}-${hex(logicalId, 4)}-${hex(logicalId, 12)}`;
      default:
        return logicalId.slice(0, 64);
    }
  }

  /** What `Ref` gives. */
  ref(logicalId: string): string {
    if (logicalId === 'AWS::Partition') return 'aws';
    if (logicalId === 'AWS::Region') return REGION;
    if (logicalId === 'AWS::AccountId') return ACCOUNT;
    if (logicalId === 'AWS::URLSuffix') return 'amazonaws.com';
    const type = this.#template.Resources[logicalId]?.Type;
    if (type === 'AWS::ECS::TaskDefinition') return this.arn(logicalId);
    if (type === 'AWS::SQS::Queue')
      return `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${this.name(logicalId)}`;
    return this.name(logicalId);
  }

  /** What `Fn::GetAtt [id, Arn]` gives. */
  arn(logicalId: string): string {
    const type = this.#template.Resources[logicalId]?.Type;
    const name = this.name(logicalId);
    switch (type) {
      case 'AWS::S3::Bucket':
        return `arn:aws:s3:::${name}`;
      case 'AWS::ECS::Cluster':
        return `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${name}`;
      case 'AWS::ECS::TaskDefinition':
        return `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/${name}:1`;
      case 'AWS::Lambda::Function':
        return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`;
      case 'AWS::IAM::Role':
        return `arn:aws:iam::${ACCOUNT}:role/${name}`;
      case 'AWS::KMS::Key':
        return `arn:aws:kms:${REGION}:${ACCOUNT}:key/${name}`;
      case 'AWS::SQS::Queue':
        return `arn:aws:sqs:${REGION}:${ACCOUNT}:${name}`;
      case 'AWS::Logs::LogGroup':
        return `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${name}:*`;
      default:
        return `arn:aws:unknown:${REGION}:${ACCOUNT}:${name}`;
    }
  }

  /** Resolves every intrinsic in a template value. */
  resolve(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((item) => this.resolve(item));
    if (value === null || typeof value !== 'object') return value;
    const record = value as Record<string, unknown>;
    if ('Ref' in record) return this.ref(String(record.Ref));
    if ('Fn::GetAtt' in record) {
      const [id, attribute] = record['Fn::GetAtt'] as [string, string];
      if (attribute === 'Arn') return this.arn(id);
      if (attribute === 'GroupId') return this.name(id);
      return `${this.name(id)}.${attribute}`;
    }
    if ('Fn::Join' in record) {
      const [separator, parts] = record['Fn::Join'] as [string, unknown[]];
      return (this.resolve(parts) as unknown[]).join(separator);
    }
    if ('Fn::Split' in record) {
      const [separator, text] = record['Fn::Split'] as [string, unknown];
      return String(this.resolve(text)).split(separator);
    }
    if ('Fn::Select' in record) {
      const [index, list] = record['Fn::Select'] as [number, unknown];
      return (this.resolve(list) as unknown[])[Number(index)];
    }
    return Object.fromEntries(Object.entries(record).map(([key, item]) => [key, this.resolve(item)]));
  }

  /**
   * The logical id of the only resource of `type` whose id is `prefix` and CDK's 8-character
   * hash (or `prefix` and more path, when `prefix` ends the path it names).
   */
  find(type: string, prefix: string): string {
    const ids = Object.entries(this.#template.Resources)
      .filter(([id, resource]) => resource.Type === type && new RegExp(`^${prefix}[0-9A-F]{8}$`).test(id))
      .map(([id]) => id);
    if (ids.length !== 1)
      throw new Error(`expected one ${type} starting with ${prefix}, found ${ids.join(', ')}`);
    return ids[0] as string;
  }
}
