/** CIDR lists in settings (`WEBHOOK_ALLOWED_NETWORKS`, `TRUSTED_PROXIES`), parsed one way. */
import { isIP } from 'node:net';

/** One network of such a list. */
export interface Network {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/**
 * Parses a comma-separated CIDR list (`10.0.0.0/8, fd12::/16`); a bare address is a /32 or /128.
 * @throws what `fail` makes of the reason, naming the first entry that is not a network
 */
export function parseNetworkList(csv: string, fail: (reason: string) => Error): Network[] {
  const out: Network[] = [];
  for (const raw of csv.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const [address = '', prefixText] = entry.split('/');
    const version = isIP(address);
    if (version === 0) throw fail(`"${entry}" is not a network (CIDR such as 10.0.0.0/8)`);
    const max = version === 4 ? 32 : 128;
    const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
    if (!(prefix >= 0 && prefix <= max)) throw fail(`"${entry}" has an invalid prefix length (0-${max})`);
    out.push({ address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' });
  }
  return out;
}
