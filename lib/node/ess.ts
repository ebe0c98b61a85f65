/** Composition root of an Edge Sync Service. */
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { startNode, type RunningNode } from './node.js';

/** An ESS is `org / destinationType / destinationID`, all required by the config schema. */
export function startEss(config: Config, logger: Logger): Promise<RunningNode> {
  return startNode(config, { nodeType: 'ESS', orgID: config.orgID, destinationType: config.destinationType, destinationID: config.destinationID }, logger);
}
