export { type AgentStatusServer, type Readiness, type StatusSource, startAgentStatusServer } from './server.js';
