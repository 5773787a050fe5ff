/** The Kubernetes API side: the only import surface of agent/k8s/ for code outside it. */
export { KubeApi, type KubeConnectOptions, type LeaseRecord, loadKubeConfig } from './client.js';
export { Informer, type InformerHandlers, type InformerOptions, type InformerStats } from './informer.js';
export { NETWORK_UP, NetworkCondition, type NodeConditionSetter } from './network-condition.js';
export { NodeLabelSync } from './node-labels.js';
export {
  KubeApiError,
  type KubeNode,
  type KubeObject,
  type KubePod,
  keyOf,
  type ListPage,
  type ListWatchSource,
  statusOf,
  type WatchEventType,
  type WatchHandle,
} from './types.js';
