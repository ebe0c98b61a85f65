/**
 * `edgesync acl list|get|add|remove objects|destinations …`: a CSS org's access control lists,
 * keyed by object or destination type (`*`: every type). [ref rest-api §1.5]
 */
import { Argument, Option, type Command } from 'commander';
import type { AclRole, AclType, AclUserType } from '../../sdk/index.js';
import { printList } from './output.js';
import type { Act } from './program.js';

const aclType = (): Argument => new Argument('<aclType>', 'which ACLs').choices(['objects', 'destinations']);
const keyArg = (): Argument => new Argument('<key>', 'the object or destination type it protects; * for every type');
const userType = (): Option => new Option('--user-type <type>', 'the entry is a user or an edge node').choices(['user', 'node']).default('user');

export function registerAcl(program: Command, act: Act): void {
  const acl = program.command('acl').description("a CSS org's ACLs on object and destination types");
  acl
    .command('list')
    .description('the keys (types) that have an ACL')
    .addArgument(aclType())
    .action(
      act(async (ctx, [type]) => {
        const client = await ctx.cssClient('acl list');
        printList(ctx.out, await client.listAclKeys(type as AclType), ['key'], (k) => [k], `no ${type!} ACLs`);
      }),
    );
  acl
    .command('get')
    .description('the entries of one ACL (every ACL with key *)')
    .addArgument(aclType())
    .addArgument(keyArg())
    .addOption(new Option('--user-type <type>', 'only entries of users or of nodes').choices(['user', 'node']))
    .action(
      act(async (ctx, [type, key], command) => {
        const { userType: only } = command.opts<{ userType?: AclUserType }>();
        const client = await ctx.cssClient('acl get');
        const entries = await client.getAcl(type as AclType, key, only === undefined ? {} : { aclUserType: only });
        printList(ctx.out, entries, ['username', 'userType', 'role'], (e) => [e.Username, e.ACLUserType, e.ACLRole], `no entries in the ${type!} ACL of ${key!}`);
      }),
    );
  acl
    .command('add')
    .description('give users (or nodes) access to a type; an existing entry keeps its role')
    .addArgument(aclType())
    .addArgument(keyArg())
    .argument('<username...>', 'user names (nodes: destType/destID)')
    .addOption(userType())
    .addOption(new Option('--role <role>', 'what they may do').choices(['aclWriter', 'aclReader']).default('aclWriter'))
    .action(
      act(async (ctx, [type, key, ...names], command) => {
        const o = command.opts<{ userType: AclUserType; role: AclRole }>();
        const client = await ctx.cssClient('acl add');
        await client.addToAcl(type as AclType, key, names.map((Username) => ({ Username, ACLUserType: o.userType, ACLRole: o.role })));
        ctx.out.note(`added ${names.length} entr${names.length === 1 ? 'y' : 'ies'} to the ${type!} ACL of ${key!}`);
      }),
    );
  acl
    .command('remove')
    .description('remove entries from an ACL (the ACL goes with its last entry)')
    .addArgument(aclType())
    .addArgument(keyArg())
    .argument('<username...>', 'user names (nodes: destType/destID)')
    .addOption(userType())
    .action(
      act(async (ctx, [type, key, ...names], command) => {
        const o = command.opts<{ userType: AclUserType }>();
        const client = await ctx.cssClient('acl remove');
        await client.removeFromAcl(type as AclType, key, names.map((Username) => ({ Username, ACLUserType: o.userType })));
        ctx.out.note(`removed ${names.length} entr${names.length === 1 ? 'y' : 'ies'} from the ${type!} ACL of ${key!}`);
      }),
    );
}
