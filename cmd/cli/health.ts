/** `edgesync health` and `edgesync login` (which checks the credentials on the health route). */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { HealthReport } from '../../sdk/index.js';
import { clientFor, resolveConnection, type ConnectionFlags } from './connection.js';
import { print, renderRecord } from './output.js';
import type { Act } from './program.js';
import { profilesPath, saveProfile, type Profile } from './profiles.js';

/** The rows a person reads first; `--json` has the whole report. */
function healthRows(h: HealthReport): Record<string, unknown> {
  const rows: Record<string, unknown> = {
    nodeType: h.general.nodeType,
    healthStatus: h.general.healthStatus,
    upTime: `${h.general.upTime} s`,
    dbStatus: h.dbHealth.dbStatus,
  };
  if (h.cssHealth !== undefined) Object.assign(rows, { cssConnection: h.cssHealth.cssConnectionStatus, registered: h.cssHealth.registered });
  if (h.mqttHealth !== undefined) rows.mqttConnection = h.mqttHealth.mqttConnectionStatus;
  if (h.usage !== undefined) Object.assign(rows, h.usage);
  return rows;
}

export function registerHealth(program: Command, act: Act): void {
  program
    .command('health')
    .description("the node's health report")
    .option('--details', 'add usage counters (requests, registered ESS nodes, stored objects)')
    .action(
      act(async (ctx, _operands, command) => {
        const { details } = command.opts<{ details?: boolean }>();
        const client = await ctx.client();
        print(ctx.out, await client.health(details === true), (h) => renderRecord(healthRows(h)));
      }),
    );
}

export function registerLogin(program: Command, act: Act): void {
  program
    .command('login')
    .description('check the connection flags against the node and save them as a profile (mode 0600)')
    .addHelpText('after', '\nThe profile is written to $XDG_CONFIG_HOME/edgesync/profiles.json (~/.config/edgesync/profiles.json) and becomes the current one.')
    .action(
      act(async (ctx) => {
        const flags: ConnectionFlags = ctx.flags;
        // What is saved is what was given now, never what an older profile held.
        const connection = await resolveConnection(flags, ctx.env, { useProfile: false });
        const client = await clientFor(connection);
        let nodeType: string;
        try {
          nodeType = (await client.health()).general.nodeType;
        } finally {
          client.close();
        }
        const profile: Profile = { url: connection.url, user: connection.user, password: connection.password };
        if (connection.org !== undefined) profile.org = connection.org;
        if (connection.ca !== undefined) profile.ca = resolve(connection.ca);
        const name = flags.profile ?? ctx.env.EDGESYNC_PROFILE ?? 'default';
        const path = profilesPath(ctx.env);
        await saveProfile(path, name, profile);
        print(ctx.out, { profile: name, path, url: connection.url, user: connection.user, nodeType }, (r) => `logged in to ${r.url} (${r.nodeType}) as ${r.user}; profile "${r.profile}" saved in ${r.path}`);
        if (nodeType === 'CSS' && connection.org === undefined) ctx.out.note('note: no --org given; CSS object commands will need --org or EDGESYNC_ORG');
      }),
    );
}
