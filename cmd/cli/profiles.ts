/**
 * Named connection profiles that `edgesync login` writes: `profiles.json` under
 * `$XDG_CONFIG_HOME/edgesync` (`~/.config/edgesync` without it). It holds passwords, so the file
 * is created mode 0600 in a 0700 directory, and replaced whole by a rename so that a crash never
 * leaves half a file.
 */
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { CliError } from './exit-codes.js';

const profileSchema = z.object({
  url: z.string().min(1),
  user: z.string().min(1),
  password: z.string(),
  /** The org for a CSS; absent for an ESS. */
  org: z.string().min(1).optional(),
  /** Path of a PEM certificate to trust (an ESS's self-signed one). */
  ca: z.string().min(1).optional(),
});

const fileSchema = z.object({
  /** The profile used without `--profile`. */
  current: z.string().optional(),
  profiles: z.record(z.string(), profileSchema),
});

export type Profile = z.infer<typeof profileSchema>;
export type ProfilesFile = z.infer<typeof fileSchema>;

/** Where the profiles live, given an environment. */
export function profilesPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME !== undefined && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'edgesync', 'profiles.json');
}

/** The profiles file, or an empty one when there is none yet. */
export async function readProfiles(path: string): Promise<ProfilesFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { profiles: {} };
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CliError(`${path} is not JSON (${(err as Error).message}); fix it or run edgesync login again`);
  }
  const result = fileSchema.safeParse(parsed);
  if (!result.success) throw new CliError(`${path} is not a profiles file: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return result.data;
}

/** Adds or replaces profile `name`, which becomes the current one. */
export async function saveProfile(path: string, name: string, profile: Profile): Promise<void> {
  const file = await readProfiles(path);
  file.profiles[name] = profile;
  file.current = name;
  const dir = join(path, '..');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  // writeFile's mode is filtered by the umask and ignored for an existing file: set it outright.
  await chmod(temp, 0o600);
  await rename(temp, path);
}

/** Profile `name` (the current one when undefined), or null when there is no such profile. */
export function pickProfile(file: ProfilesFile, name: string | undefined): { name: string; profile: Profile } | null {
  const chosen = name ?? file.current;
  if (chosen === undefined) return null;
  const profile = file.profiles[chosen];
  return profile === undefined ? null : { name: chosen, profile };
}
