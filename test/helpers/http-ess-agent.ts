/**
 * An ESS agent (lib/sync/ess/agent.ts) over the HTTP link (HttpCssLink), built from one flat set
 * of settings as lib/node/ess-sync.ts builds them: what tests that play the CSS on loopback start.
 */
import { EssAgent, type EssAgentDeps } from '../../lib/sync/ess/agent.js';
import { HttpCssLink, type HttpCssLinkDeps } from '../../lib/transport/http/http-css-link.js';

/** The link's settings and the agent's, but for the link itself and `self` (taken from the link's identity). */
export type HttpAgentDeps = HttpCssLinkDeps & Omit<EssAgentDeps, 'link' | 'self' | 'health'>;

export function httpEssAgent(deps: HttpAgentDeps): EssAgent {
  const { orgID, destinationType, destinationID } = deps;
  return new EssAgent({ ...deps, link: new HttpCssLink(deps), self: { orgID, destinationType, destinationID }, ...(deps.health !== undefined ? { health: deps.health } : {}) });
}
