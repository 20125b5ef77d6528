import { sep } from 'node:path';

/** Is `path` the folder `root` or inside it? Both are resolved paths. */
export const inside = (root: string, path: string) => path === root || path.startsWith(root + sep);
