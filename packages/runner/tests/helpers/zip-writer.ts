// The zip writer lives in @immortal-lambda/local (which serves function code); the runner's
// tests use it from source, without a package dependency that would make a cycle.
export { buildZip, codeSha256, type ZipSource, zipFolder } from '../../../local/src/zip.js';
