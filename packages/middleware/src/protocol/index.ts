// The envelope contract and the shared names live in @immortal-lambda/protocol; this entry keeps
// the import path of 0.1.0 (`@immortal-lambda/middleware/protocol`) working.
export * from '@immortal-lambda/protocol';
