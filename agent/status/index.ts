export {
  type AgentStatusServer,
  MAX_WATCHERS,
  type Readiness,
  type RouteChange,
  type StatusSource,
  startAgentStatusServer,
} from './server.js';
