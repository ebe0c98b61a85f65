/**
 * The address of the client behind a request, for the failed-login throttle and the logs of
 * refused logins. Behind a load balancer every connection comes from the balancer: counted by
 * its address, one client's guesses would lock every client out. The operator names the
 * balancers (`TRUSTED_PROXIES`, CIDR list); only a connection from one of them has its
 * `X-Forwarded-For` believed, read from the right — each trusted hop appends the address it saw
 * — up to the first address that is not a trusted proxy: that is the client. Anything left of it
 * was written by the client itself and proves nothing. With no trusted proxies (the default)
 * the header is ignored and the connection's address is the client.
 */
import { BlockList, isIP } from 'node:net';
import { parseNetworkList } from '../model/index.js';

/** What the address of a unix-socket connection is reported as. */
export const UNIX_SOCKET_SOURCE = 'unix socket';

/** A setting that is not a CIDR list. */
export class TrustedProxiesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrustedProxiesError';
  }
}

/** `::ffff:10.0.0.1` → `10.0.0.1`, `[::1]` → `::1`: one spelling per address, for keys and checks. */
export function plainAddress(address: string): string {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  return mapped?.[1] ?? bare;
}

export class TrustedProxies {
  private readonly list = new BlockList();
  private readonly count: number;

  /**
   * @param csv comma-separated networks (`10.0.0.0/8, fd00::/8`); a bare address is one host
   * @throws TrustedProxiesError naming the first entry that is not a network
   */
  constructor(csv = '') {
    const networks = parseNetworkList(csv, (reason) => new TrustedProxiesError(reason));
    for (const n of networks) this.list.addSubnet(n.address, n.prefix, n.family);
    this.count = networks.length;
  }

  /** Whether any proxy is trusted at all. */
  get enabled(): boolean {
    return this.count > 0;
  }

  /** Whether `address` (any spelling) is one of the trusted proxies. */
  trusts(address: string): boolean {
    const plain = plainAddress(address);
    const version = isIP(plain);
    return version !== 0 && this.list.check(plain, version === 4 ? 'ipv4' : 'ipv6');
  }

  /**
   * The client's address.
   * @param remote the connection's peer address (undefined for a unix socket)
   * @param forwardedFor the request's `X-Forwarded-For` (every such header, joined with commas)
   */
  clientOf(remote: string | undefined, forwardedFor: string | undefined): string {
    if (remote === undefined) return UNIX_SOCKET_SOURCE;
    let client = plainAddress(remote);
    if (!this.enabled || forwardedFor === undefined || !this.trusts(client)) return client;
    const hops = forwardedFor.split(',').map((h) => plainAddress(h.trim()));
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!;
      // Not an address: the hop that wrote it is the last one we can vouch for.
      if (isIP(hop) === 0) break;
      client = hop;
      if (!this.trusts(hop)) break;
    }
    return client;
  }
}
