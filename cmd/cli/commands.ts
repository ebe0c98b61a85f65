/** The first words of the client commands; kept apart so that cli.ts need not load commander to dispatch. */
export const CLIENT_COMMANDS: readonly string[] = ['object', 'destination', 'acl', 'org', 'health', 'login', 'top'];
