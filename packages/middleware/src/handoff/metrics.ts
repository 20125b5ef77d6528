import { DEFAULT_METRICS_NAMESPACE, ENV, emfLine } from '@immortal-lambda/protocol';
import type { ResolvedConfig } from '../config.js';
import type { HandoffDependencies, HandoffTarget } from '../target.js';

/** The runner's metrics follow the function's settings: passed when they are not the defaults. */
export function metricsEnvironment(config: ResolvedConfig): { name: string; value: string }[] {
  const { enabled, namespace, dimensions } = config.metrics;
  const pairs = Object.entries(dimensions).map(([name, value]) => `${name}=${value}`);
  return [
    ...(enabled ? [] : [{ name: ENV.metrics, value: 'false' }]),
    ...(namespace !== DEFAULT_METRICS_NAMESPACE ? [{ name: ENV.metricsNamespace, value: namespace }] : []),
    ...(pairs.length > 0 ? [{ name: ENV.metricsDimensions, value: pairs.join(',') }] : []),
  ];
}

/** The EMF lines of the handoffs of one wrapped function, unless its metrics are off. */
export class HandoffMetrics {
  readonly #config: ResolvedConfig;
  readonly #deps: HandoffDependencies;

  constructor(config: ResolvedConfig, deps: HandoffDependencies) {
    this.#config = config;
    this.#deps = deps;
  }

  /** A handoff that reached its task: started at `began`, confirmed at `confirmed`. */
  handedOff(
    target: HandoffTarget,
    began: number,
    confirmed: number,
    envelopeBytes: number,
    properties: Record<string, unknown>,
  ): void {
    this.#write(
      target.context.functionName,
      {
        Handoffs: { value: 1, unit: 'Count' },
        HandoffLatency: { value: confirmed - began, unit: 'Milliseconds' },
        TimeInLambda: { value: began - target.startedAt, unit: 'Milliseconds' },
        EnvelopeBytes: { value: envelopeBytes, unit: 'Bytes' },
      },
      properties,
    );
  }

  /** A handoff that failed. */
  failed(target: HandoffTarget, began: number, properties: Record<string, unknown>): void {
    this.#write(
      target.context.functionName,
      {
        HandoffFailures: { value: 1, unit: 'Count' },
        TimeInLambda: { value: began - target.startedAt, unit: 'Milliseconds' },
      },
      properties,
    );
  }

  /** One EMF line; a writer that throws costs nothing. */
  #write(
    functionName: string,
    metrics: Parameters<typeof emfLine>[0]['metrics'],
    properties: Record<string, unknown>,
  ): void {
    const settings = this.#config.metrics;
    if (!settings.enabled) return;
    try {
      this.#deps.writeMetric(
        emfLine({
          namespace: settings.namespace,
          dimensions: { FunctionName: String(functionName), ...settings.dimensions },
          metrics,
          properties,
          timestamp: this.#deps.clock.now(),
        }),
      );
    } catch {
      // Metrics never change how a handoff ends.
    }
  }
}
