/** The CRI client moved to agent/lab/cri/client.ts (petrelctl lab --cri uses it too). */
export * from '../../agent/lab/cri/client.js';
