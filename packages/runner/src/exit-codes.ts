// The exit codes are part of the protocol: the watchdog reads them from stopped tasks.
export { EXIT_CODES, type ExitCode, OUTCOMES } from '@immortal-lambda/protocol';
