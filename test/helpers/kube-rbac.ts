/**
 * RBAC for the Kubernetes API test double, from the manifests themselves: the rules bound to a
 * ServiceAccount by the ClusterRoleBindings (any namespace) and RoleBindings (their namespace) in
 * manifests/*.yaml, evaluated as the API server's RBAC authorizer does (verb, API group, resource
 * or resource/subresource, resourceNames). A test whose component needs more than its manifests
 * grant then fails with 403, as it would in a cluster.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { AuthzRequest } from './kube-api.js';

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

const MANIFESTS = new URL('../../../manifests/', import.meta.url).pathname;

// biome-ignore lint/suspicious/noExplicitAny: manifests are free-form YAML
type Obj = Record<string, any>;

function loadObjects(dir: string): Obj[] {
  const out: Obj[] = [];
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.yaml')))
    for (const d of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
      const o = d.toJS() as Obj | null;
      if (o) out.push(o);
    }
  return out;
}

/** The authorizer for `namespace/serviceAccount` from the manifests' RBAC objects. */
export function rbacFromManifests(namespace: string, serviceAccount: string, dir = MANIFESTS) {
  const objs = loadObjects(dir);
  const bound: { rules: Rule[]; namespace: string | null }[] = [];
  for (const b of objs) {
    if (b.kind !== 'ClusterRoleBinding' && b.kind !== 'RoleBinding') continue;
    const me = (b.subjects ?? []).some(
      (s: Obj) => s.kind === 'ServiceAccount' && s.name === serviceAccount && s.namespace === namespace,
    );
    if (!me) continue;
    const role = objs.find(
      (o) =>
        o.kind === b.roleRef.kind &&
        o.metadata.name === b.roleRef.name &&
        (o.kind === 'ClusterRole' || o.metadata.namespace === b.metadata.namespace),
    );
    if (role)
      bound.push({ rules: role.rules ?? [], namespace: b.kind === 'RoleBinding' ? b.metadata.namespace : null });
  }
  return (r: AuthzRequest): boolean =>
    bound.some(
      (b) =>
        (b.namespace === null || b.namespace === r.namespace) &&
        b.rules.some(
          (rule) =>
            rule.verbs.includes(r.verb) &&
            rule.apiGroups.includes(r.group) &&
            rule.resources.includes(r.subresource ? `${r.resource}/${r.subresource}` : r.resource) &&
            (!rule.resourceNames?.length || (r.name !== undefined && rule.resourceNames.includes(r.name))),
        ),
    );
}
