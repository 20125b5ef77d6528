import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

/**
 * How the runner task reaches the Lambda API, S3, ECR and CloudWatch Logs.
 *
 * @example
 * ```ts
 * new FargateFallback(this, 'Fallback', { function: fn, networking: 'private' });
 * ```
 *
 * - `public` (default): public subnets, a public IP per task, no NAT gateway: nothing to pay at
 *   rest; tasks have no inbound rules.
 * - `private`: isolated subnets with VPC endpoints (ECR API and Docker, CloudWatch Logs, Lambda as
 *   interface endpoints, S3 as a gateway endpoint): no internet path, but interface endpoints
 *   are billed per hour and per AZ.
 */
export type FallbackNetworking = 'public' | 'private';

/** What {@link TaskNetwork} is made from: a given VPC and subnets, or the networking to create. */
export interface TaskNetworkProps {
  vpc?: ec2.IVpc | undefined;
  networking: FallbackNetworking;
  subnets?: ec2.SubnetSelection | undefined;
  interfaceEndpoints: readonly ec2.InterfaceVpcEndpointAwsService[];
  /** The task sends X-Ray segments: isolated subnets need the X-Ray endpoint. */
  tracing?: boolean | undefined;
}

/**
 * Where runner tasks run: the VPC (given, or created with the endpoints `private` networking
 * needs), the tasks' security group (no inbound), the subnets, and whether tasks get a public IP.
 * Its resources are created in the scope it is given (the `FargateFallback`), so that their
 * logical ids stay those the construct has always deployed.
 *
 * @example
 * ```ts
 * const network = new TaskNetwork(this, { networking: 'private', interfaceEndpoints: [] });
 * network.subnets.subnetIds;
 * ```
 */
export class TaskNetwork {
  readonly vpc: ec2.IVpc;
  readonly securityGroup: ec2.SecurityGroup;
  readonly subnets: ec2.SelectedSubnets;
  /**
   * A public IP exactly when the selected subnets are public (a given VPC's included): tasks in
   * public subnets reach AWS only through it, tasks in private ones cannot have one.
   */
  readonly assignPublicIp: boolean;
  /**
   * The tasks run in isolated subnets, which reach AWS through VPC endpoints only (and nothing
   * outside AWS): `private` networking, or a given VPC's subnets selected as PRIVATE_ISOLATED.
   */
  readonly isolated: boolean;

  constructor(scope: Construct, props: TaskNetworkProps) {
    const extra = [
      ...props.interfaceEndpoints,
      ...(props.tracing && !props.interfaceEndpoints.includes(ec2.InterfaceVpcEndpointAwsService.XRAY)
        ? [ec2.InterfaceVpcEndpointAwsService.XRAY]
        : []),
    ];
    this.vpc = props.vpc ?? createVpc(scope, props.networking, extra);
    this.securityGroup = new ec2.SecurityGroup(scope, 'TaskSecurityGroup', {
      vpc: this.vpc,
      description: 'immortal-lambda runner tasks: no inbound, outbound to AWS APIs',
      allowAllOutbound: true,
    });
    const subnetType =
      props.subnets?.subnetType ??
      (props.networking === 'public' ? ec2.SubnetType.PUBLIC : ec2.SubnetType.PRIVATE_ISOLATED);
    this.subnets = this.vpc.selectSubnets(props.subnets ?? { subnetType });
    this.assignPublicIp = this.subnets.hasPublic;
    this.isolated = props.vpc
      ? props.subnets?.subnetType === ec2.SubnetType.PRIVATE_ISOLATED
      : props.networking === 'private';
  }
}

/** A VPC of two availability zones, public or isolated, with rejected flows logged. */
function createVpc(
  scope: Construct,
  networking: FallbackNetworking,
  extra: readonly ec2.InterfaceVpcEndpointAwsService[],
): ec2.Vpc {
  const vpc = new ec2.Vpc(scope, 'Vpc', {
    maxAzs: 2,
    natGateways: 0,
    subnetConfiguration: [
      networking === 'public'
        ? { name: 'tasks', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }
        : { name: 'tasks', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
    ],
    flowLogs: {
      rejected: {
        destination: ec2.FlowLogDestination.toCloudWatchLogs(
          new logs.LogGroup(scope, 'FlowLogs', {
            retention: logs.RetentionDays.ONE_MONTH,
            removalPolicy: RemovalPolicy.DESTROY,
          }),
        ),
        trafficType: ec2.FlowLogTrafficType.REJECT,
      },
    },
  });
  if (networking === 'private') addEndpoints(vpc, extra);
  return vpc;
}

/** What isolated subnets need: S3 as a gateway, ECR, Logs and Lambda (and any given) as interfaces. */
function addEndpoints(vpc: ec2.Vpc, extra: readonly ec2.InterfaceVpcEndpointAwsService[]): void {
  vpc.addGatewayEndpoint('S3', { service: ec2.GatewayVpcEndpointAwsService.S3 });
  const endpoints: [string, ec2.InterfaceVpcEndpointAwsService][] = [
    ['EcrApi', ec2.InterfaceVpcEndpointAwsService.ECR],
    ['EcrDocker', ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER],
    ['Logs', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
    ['Lambda', ec2.InterfaceVpcEndpointAwsService.LAMBDA],
    ...extra.map((service): [string, ec2.InterfaceVpcEndpointAwsService] => [
      `Extra${service.shortName.replace(/[^A-Za-z0-9]/g, '')}`,
      service,
    ]),
  ];
  for (const [name, service] of endpoints) {
    vpc.addInterfaceEndpoint(name, { service, privateDnsEnabled: true });
  }
}
