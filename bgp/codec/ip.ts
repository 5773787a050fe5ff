/** Address text <-> bytes: the shared pure leaf (agent/common/ip.ts), re-exported for the codec's files. */
export * from '../../agent/common/ip.js';
