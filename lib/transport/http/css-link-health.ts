/**
 * How an ESS's link to its CSS fares, for `GET /api/v1/health` (the `cssHealth` section, our
 * addition): the outcome of the last exchange, when one last succeeded, and a colour.
 *
 * The rule (README "Health", swagger HealthReport.cssHealth):
 * - red: the CSS refuses this ESS's credentials, or its certificate is not trusted (nothing
 *   improves until an operator acts), or no exchange succeeded for `redAfterMs`;
 * - yellow: the last exchange failed (the CSS is unreachable, or answers with a 5xx), no
 *   exchange succeeded yet since the start, none for `yellowAfterMs`, or the ESS is not (yet,
 *   or no longer) registered: a CSS that answers but does not sync with this ESS is not healthy;
 * - green otherwise.
 * With the ESS's settings: yellowAfter = hold + 2 × max(HTTP_POLLING_INTERVAL, RESEND_INTERVAL),
 * redAfter = hold + 6 × that, where hold is how long the CSS may hold an empty poll (a healthy
 * long-poll exchanges nothing for that long). Defaults: 50 s and 90 s. Over MQTT the link says
 * itself whether it is up (`live`): connected to the broker and registered with the CSS.
 */

/**
 * `connecting` until the first answer; `failing`: the CSS answers with a server error (5xx);
 * `unreachable`: no answer (connection refused, reset, timed out, a name that does not resolve).
 */
export type CssConnectionStatus = 'connecting' | 'connected' | 'unreachable' | 'failing' | 'credentialsRefused' | 'certificateUntrusted';

export interface CssHealthReport {
  cssStatus: 'green' | 'yellow' | 'red';
  cssConnectionStatus: CssConnectionStatus;
  /** The CSS's base URL. */
  css: string;
  /** Whether the ESS is registered with the CSS (since its start). */
  registered: boolean;
  /** When an exchange with the CSS last succeeded (ISO 8601); omitted when none did yet. */
  lastSuccessfulExchange?: string;
  /** Seconds since then (since the start when none did yet). */
  timeSinceLastSuccessfulExchange: number;
  /** Why the last exchange failed; omitted while connected. */
  reason?: string;
}

export interface CssLinkHealthOptions {
  css: string;
  yellowAfterMs: number;
  redAfterMs: number;
  now?: () => number;
  /**
   * How a link that stays open (MQTT) fares right now, asked at each report: up (connected and
   * registered: an idle link exchanges nothing, yet nothing is wrong) counts as a success; down
   * with a reason (the connection to the broker is lost) as that failure; null says nothing.
   */
  live?: LinkLiveness;
}

/** How a link that stays open fares right now; see CssLinkHealthOptions.live. */
export type LinkLiveness = () => { up: true } | { up: false; reason: string } | null;

/** The thresholds of the rule above from the ESS's settings, in ms. */
export function cssHealthThresholds(s: { pollingIntervalMs: number; resendIntervalMs: number; longPollSeconds: number }): { yellowAfterMs: number; redAfterMs: number } {
  const step = Math.max(s.pollingIntervalMs, s.resendIntervalMs);
  const hold = s.longPollSeconds * 1000;
  return { yellowAfterMs: hold + 2 * step, redAfterMs: hold + 6 * step };
}

export class CssLinkHealth {
  private readonly now: () => number;
  private readonly startedAt: number;
  private status: CssConnectionStatus = 'connecting';
  private lastSuccess = 0;
  private reason = '';
  private registered = false;

  constructor(private readonly opts: CssLinkHealthOptions) {
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
  }

  /** What an answer of the CSS with this HTTP status says about the link. */
  answered(status: number, what: string): void {
    if (status === 401 || status === 403) this.failed('credentialsRefused', `${what} answered ${status}`);
    else if (status >= 500) this.failed('failing', `${what} answered ${status}`);
    else this.succeeded();
  }

  /** A request that got no answer; one aborted on purpose (a stop, a wake) says nothing. */
  noAnswer(err: Error, what: string): void {
    this.failed(isUntrustedCertificate(err) ? 'certificateUntrusted' : 'unreachable', `${what}: ${err.message}`);
  }

  succeeded(): void {
    this.status = 'connected';
    this.lastSuccess = this.now();
    this.reason = '';
  }

  failed(status: Exclude<CssConnectionStatus, 'connecting' | 'connected'>, reason: string): void {
    this.status = status;
    this.reason = reason;
  }

  /** Registration (or a ping) went through, or the CSS forgot this ESS (424, 404 on ping). */
  setRegistered(registered: boolean): void {
    this.registered = registered;
  }

  report(): CssHealthReport {
    const live = this.opts.live?.() ?? null;
    if (live?.up === true) this.succeeded();
    else if (live !== null && live.up === false && (this.status === 'connected' || this.status === 'connecting')) this.failed('unreachable', live.reason);
    const now = this.now();
    const silentMs = now - (this.lastSuccess === 0 ? this.startedAt : this.lastSuccess);
    const refused = this.status === 'credentialsRefused' || this.status === 'certificateUntrusted';
    const cssStatus = refused || silentMs > this.opts.redAfterMs ? 'red' : this.status !== 'connected' || !this.registered || silentMs > this.opts.yellowAfterMs ? 'yellow' : 'green';
    return {
      cssStatus,
      cssConnectionStatus: this.status,
      css: this.opts.css,
      registered: this.registered,
      ...(this.lastSuccess !== 0 ? { lastSuccessfulExchange: new Date(this.lastSuccess).toISOString() } : {}),
      timeSinceLastSuccessfulExchange: Math.floor(silentMs / 1000),
      ...(this.reason !== '' ? { reason: this.reason } : {}),
    };
  }
}

/** Node's codes for a server certificate that failed verification (not a network failure). */
const UNTRUSTED_CERTIFICATE = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export function isUntrustedCertificate(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNTRUSTED_CERTIFICATE.has(code);
}
