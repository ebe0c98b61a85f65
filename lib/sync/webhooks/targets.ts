/**
 * Which URLs a node may call as webhooks. An ESS calls whatever its apps register (they run on
 * the node and register `localhost` hooks, as with the reference). A CSS is multi-tenant: a
 * user able to register a hook must not make it call the cloud's metadata service or a
 * link-local address, and the operator may confine hooks to listed networks
 * (`WEBHOOK_ALLOWED_NETWORKS`). The check runs at registration and again before every attempt,
 * on the addresses the name resolves to then: DNS may have changed in between.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { parseNetworkList, type Network } from '../../model/index.js';

/** A URL the node will not call, with the reason (shown to the registering user and in the log). */
export class WebhookTargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookTargetError';
  }
}

/**
 * The target's name does not resolve now. Not a refusal: at registration the name may be meant
 * for later, and before a call it is a failure worth retrying.
 */
export class UnresolvedTargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnresolvedTargetError';
  }
}

/** Host names of cloud metadata services, refused whatever they resolve to. */
const METADATA_HOSTS = new Set(['metadata.google.internal', 'metadata.goog', 'metadata']);

function refusedByDefault(): BlockList {
  const list = new BlockList();
  list.addSubnet('169.254.0.0', 16, 'ipv4');
  list.addSubnet('fe80::', 10, 'ipv6');
  // AWS's IPv6 metadata endpoint (fd00:ec2::254); 169.254.169.254 is inside the link-local range.
  list.addAddress('fd00:ec2::254', 'ipv6');
  return list;
}

/**
 * Parses `WEBHOOK_ALLOWED_NETWORKS`.
 * @throws WebhookTargetError naming the first entry that is not a CIDR
 */
export function parseNetworks(csv: string): Network[] {
  return parseNetworkList(csv, (reason) => new WebhookTargetError(reason));
}

export interface TargetPolicyOptions {
  /** Any URL is accepted (the ESS): only the scheme is checked. */
  open: boolean;
  /** When not empty, a target must resolve into one of these networks only. */
  allowedNetworks?: readonly Network[];
  /** Resolves a host name to its addresses; the system resolver by default (tests pass their own). */
  resolve?: (host: string) => Promise<string[]>;
}

/** A registration waits for the resolver no longer than this; a slower name counts as unresolved. */
const RESOLVE_TIMEOUT_MS = 3000;

async function systemResolve(host: string): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the resolver within ${RESOLVE_TIMEOUT_MS} ms`)), RESOLVE_TIMEOUT_MS);
  });
  try {
    const found = await Promise.race([lookup(host, { all: true, verbatim: true }), timeout]);
    return found.map((a) => a.address);
  } finally {
    clearTimeout(timer);
  }
}

/** `[::1]` → `::1`; an IPv4-mapped IPv6 address is checked as the IPv4 address it carries. */
function plainAddress(a: string): string {
  const bare = a.startsWith('[') && a.endsWith(']') ? a.slice(1, -1) : a;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  return mapped?.[1] ?? bare;
}

export class TargetPolicy {
  private readonly refused = refusedByDefault();
  private readonly allowed: BlockList | null;
  private readonly resolve: (host: string) => Promise<string[]>;

  constructor(private readonly opts: TargetPolicyOptions) {
    const nets = opts.allowedNetworks ?? [];
    if (nets.length === 0) this.allowed = null;
    else {
      this.allowed = new BlockList();
      for (const n of nets) this.allowed.addSubnet(n.address, n.prefix, n.family);
    }
    this.resolve = opts.resolve ?? systemResolve;
  }

  /** The scheme and the URL's shape, without resolving anything. */
  static parse(url: string): URL {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new WebhookTargetError('Invalid webhook');
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new WebhookTargetError('Invalid webhook: only http and https URLs can be called');
    return parsed;
  }

  /**
   * Checks that `url` may be called now; returns the addresses it resolves to.
   * @throws WebhookTargetError with the reason
   * @throws UnresolvedTargetError when the name does not resolve
   */
  async check(url: string): Promise<string[]> {
    const parsed = TargetPolicy.parse(url);
    if (this.opts.open) return [];
    const host = plainAddress(parsed.hostname).toLowerCase().replace(/\.$/, '');
    if (METADATA_HOSTS.has(host)) throw new WebhookTargetError(`Invalid webhook: ${host} is a cloud metadata service`);
    let addresses: string[];
    if (isIP(host) !== 0) addresses = [host];
    else {
      try {
        addresses = (await this.resolve(host)).map(plainAddress);
      } catch (e) {
        throw new UnresolvedTargetError(`${host} does not resolve (${e instanceof Error ? e.message : String(e)})`);
      }
      if (addresses.length === 0) throw new UnresolvedTargetError(`${host} does not resolve`);
    }
    for (const a of addresses) {
      const family = isIP(a) === 4 ? 'ipv4' : 'ipv6';
      if (this.refused.check(a, family)) throw new WebhookTargetError(`Invalid webhook: ${a} is a link-local or cloud metadata address`);
      if (this.allowed !== null && !this.allowed.check(a, family)) throw new WebhookTargetError(`Invalid webhook: ${a} is outside WEBHOOK_ALLOWED_NETWORKS`);
    }
    return addresses;
  }
}
