/** `edgesync destination list|objects`: the edge nodes of a CSS's org. [ref rest-api §1.3] */
import type { Command } from 'commander';
import { printList } from './output.js';
import type { Act } from './program.js';

export function registerDestination(program: Command, act: Act): void {
  const destination = program.command('destination').description("the ESS nodes registered in a CSS's org");
  destination
    .command('list')
    .description('the registered nodes: type, ID, communication, code version')
    .action(
      act(async (ctx) => {
        const client = await ctx.cssClient('destination list');
        const nodes = await client.getDestinations();
        printList(ctx.out, nodes, ['type', 'id', 'communication', 'codeVersion'], (d) => [d.destinationType, d.destinationID, d.communication, d.codeVersion], 'no destinations');
      }),
    );
  destination
    .command('objects')
    .description('the objects being delivered to one node, with their delivery status')
    .argument('<type>', 'destination type')
    .argument('<id>', 'destination ID')
    .action(
      act(async (ctx, [type, id]) => {
        const client = await ctx.cssClient('destination objects');
        const objects = await client.getDestinationObjects(type!, id!);
        printList(ctx.out, objects, ['objectType', 'objectID', 'status'], (o) => [o.objectType, o.objectID, o.status], `no objects for ${type!}/${id!}`);
      }),
    );
}
