/** `edgesync org list|put|delete`: the organizations of a CSS. [ref rest-api §1.4] */
import type { Command } from 'commander';
import type { OrganizationInput } from '../../sdk/index.js';
import { printList } from './output.js';
import type { Act } from './program.js';

export function registerOrg(program: Command, act: Act): void {
  const org = program.command('org').description("a CSS's organizations (sync admins; an org admin sees its own)");
  org
    .command('list')
    .description('the organizations and their broker addresses')
    .action(
      act(async (ctx) => {
        const client = await ctx.client();
        printList(ctx.out, await client.listOrganizations(), ['org', 'address'], (o) => [o['org-id'], o.address], 'no organizations');
      }),
    );
  org
    .command('put')
    .description('create or update an organization')
    .argument('<org>', 'its ID')
    .option('--address <address>', "its MQTT broker's address (when it has its own)")
    .option('--broker-user <user>', 'user name on that broker')
    .option('--broker-password <password>', 'password on that broker')
    .action(
      act(async (ctx, [orgID], command) => {
        const o = command.opts<{ address?: string; brokerUser?: string; brokerPassword?: string }>();
        const input: OrganizationInput = { orgID: orgID! };
        if (o.address !== undefined) input.address = o.address;
        if (o.brokerUser !== undefined) input.user = o.brokerUser;
        if (o.brokerPassword !== undefined) input.password = o.brokerPassword;
        const client = await ctx.client();
        await client.putOrganization(input);
        ctx.out.note(`organization ${orgID!} saved`);
      }),
    );
  org
    .command('delete')
    .description('delete an organization with all its objects, destinations and ACLs')
    .argument('<org>', 'its ID')
    .action(
      act(async (ctx, [orgID]) => {
        const client = await ctx.client();
        await client.deleteOrganization(orgID!);
        ctx.out.note(`organization ${orgID!} deleted`);
      }),
    );
}
