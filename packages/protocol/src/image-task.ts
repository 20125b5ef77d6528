/**
 * How a task runs a container image function: the function's own image, with the runner brought
 * in beside it. An install container from the runner image copies the runner into a volume the
 * task's containers share, and exits; the function's container (named `runner`, the one RunTask
 * overrides) starts once it has, with its entry point replaced by the runner on that volume, run
 * by the image's own `node`. The user's image is not rebuilt. The construct's task definition and
 * the local plane's podman launcher both follow this.
 *
 * @example
 * ```ts
 * import { IMAGE_TASK } from '@immortal-lambda/protocol';
 * taskDefinition.addVolume({ name: IMAGE_TASK.volume });
 * const install = taskDefinition.addContainer(IMAGE_TASK.installContainer, {
 *   image: runnerImage,
 *   essential: false,
 *   entryPoint: [...IMAGE_TASK.installEntryPoint],
 *   command: [...IMAGE_TASK.installCommand],
 * });
 * ```
 */
export const IMAGE_TASK = {
  /** Where the runner image keeps the runner (its Dockerfile installs it there). */
  runnerHome: '/usr/local/lib/immortal-runner',
  /** The shared volume's name in the task definition. */
  volume: 'immortal-runner',
  /** Where both containers mount the shared volume. */
  mount: '/immortal-runner',
  /** The install container's name. */
  installContainer: 'runner-install',
  /** The install container runs as root: the fresh volume belongs to root. */
  installUser: '0',
  installEntryPoint: ['cp'],
  installCommand: ['-R', '/usr/local/lib/immortal-runner/.', '/immortal-runner/'],
  /** The function container's entry point: the runner on the volume, on the image's `node`. */
  entryPoint: ['node', '/immortal-runner/dist/cli.js'],
} as const;
