/** Composition root of the Cloud Sync Service. */
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { startNode, type RunningNode } from './node.js';

/** The CSS always identifies itself as `Cloud/Cloud`. [ref sync-protocol §0] */
export function startCss(config: Config, logger: Logger): Promise<RunningNode> {
  return startNode(config, { nodeType: 'CSS', orgID: config.orgID, destinationType: 'Cloud', destinationID: 'Cloud' }, logger);
}
