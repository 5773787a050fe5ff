/** VERSION (SPEC): echo the request's version (the latest when it has none) and list ours. */
import { isSemver, LATEST_VERSION, SUPPORTED_VERSIONS } from '../version.js';

export function cmdVersion(requested: string | undefined): Record<string, unknown> {
  return {
    cniVersion: requested && isSemver(requested) ? requested : LATEST_VERSION,
    supportedVersions: [...SUPPORTED_VERSIONS],
  };
}
