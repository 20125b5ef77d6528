/**
 * Waits `ms`, or rejects with the signal's reason as soon as it aborts: how the example handlers
 * stop at once when their work is handed off (or their task is being stopped).
 */
export const pause = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise<void>((resolve, reject) => {
    signal.throwIfAborted();
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
