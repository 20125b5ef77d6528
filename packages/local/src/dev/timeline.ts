/**
 * The dev loop's timeline: one line per event of either leg, with the seconds since the run
 * started and who said it (`build`, `lambda`, `ecs`, `runner`, `metrics`, `dev`).
 */
export class Timeline {
  readonly #write: (text: string) => void;
  #started = performance.now();

  constructor(write: (text: string) => void) {
    this.#write = write;
  }

  /** A new run starts: the clock restarts at zero. */
  restart(): void {
    this.#started = performance.now();
  }

  /** Writes text as it is, below the timeline's lines. */
  write(text: string): void {
    this.#write(text);
  }

  line = (who: string, text: string): void => {
    this.#write(
      `${((performance.now() - this.#started) / 1000).toFixed(3).padStart(8)}s  ${who.padEnd(7)}  ${text}\n`,
    );
  };

  /** One log line as a timeline entry: a JSON record by its message and what matters in it. */
  describe = (who: string, text: string): void => describe(this.line, who, text);
}

function describe(line: (who: string, text: string) => void, who: string, text: string): void {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(text) as Record<string, unknown>;
  } catch {
    for (const part of text.split('\n')) line(who, part);
    return;
  }
  const aws = record._aws as { CloudWatchMetrics?: { Metrics: { Name: string }[] }[] } | undefined;
  if (aws?.CloudWatchMetrics) {
    const names =
      aws.CloudWatchMetrics[0]?.Metrics.map((metric) => `${metric.Name} ${record[metric.Name]}`) ?? [];
    line('metrics', names.join(', '));
    return;
  }
  const error = record.error as { name?: string; message?: string; stack?: string } | undefined;
  const detail = ['outcome', 'exitCode', 'taskArn', 'handler', 'durationMs']
    .filter((key) => record[key] !== undefined)
    .map((key) => `${key} ${String(record[key])}`)
    .join(', ');
  line(who, `${String(record.message ?? text)}${detail ? ` (${detail})` : ''}`);
  if (error?.stack) for (const frame of error.stack.split('\n')) line(who, `  ${frame}`);
  else if (error?.message) line(who, `  ${error.name ?? 'Error'}: ${error.message}`);
}
