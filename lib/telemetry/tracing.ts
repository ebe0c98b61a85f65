/**
 * Tracing, built from the configuration: an OTLP/HTTP exporter behind a batch processor, feeding
 * the delivery observer (tracing-observer.ts). With no endpoint configured nothing is built at
 * all: the node's fan-out holds no tracing observer and no hook runs per event or log line.
 */
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import type { SyncEvents } from '../sync/sync-events.js';
import { DeliveryIdGenerator, DeliveryTraces } from './tracing-observer.js';
import { tracingEnabled } from './tracing-enabled.js';

export type TracingConfig = Pick<
  Config,
  'otlpEndpoint' | 'otlpTracesEndpoint' | 'otlpHeaders' | 'otelServiceName' | 'traceExportDelay' | 'nodeType' | 'orgID' | 'destinationType' | 'destinationID' | 'communicationProtocol'
>;

export interface Tracing {
  /** The observer to add to the node's SyncEvents fan-out. */
  readonly events: SyncEvents;
  /** Exports what is finished, then stops; bounded, so a dead collector cannot hold a stop. */
  shutdown(): Promise<void>;
}

export { tracingEnabled } from './tracing-enabled.js';

/** Where spans are POSTed, by OpenTelemetry's rules: the signal's URL as is, else the base URL + `v1/traces`. */
export function tracesUrl(config: Pick<Config, 'otlpEndpoint' | 'otlpTracesEndpoint'>): string {
  if (config.otlpTracesEndpoint !== '') return config.otlpTracesEndpoint;
  return `${config.otlpEndpoint.replace(/\/+$/, '')}/v1/traces`;
}

/** OTEL_EXPORTER_OTLP_HEADERS: `k=v,k2=v2`, values URL-encoded (the schema checked the shape). */
export function parseOtlpHeaders(raw: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of raw.split(',')) {
    const at = pair.indexOf('=');
    if (at <= 0) continue;
    const key = pair.slice(0, at).trim();
    const value = pair.slice(at + 1).trim();
    try {
      headers[key] = decodeURIComponent(value);
    } catch {
      headers[key] = value;
    }
  }
  return headers;
}

/** Longest a stop waits for the last spans to leave; shorter when the collector is known to be down. */
const SHUTDOWN_WAIT_MS = 3000;
const SHUTDOWN_WAIT_DOWN_MS = 300;
/**
 * Longest one export may take, its retries included: past it the batch is dropped. It also bounds
 * how long an export in flight keeps a stopped process alive (its retry timers hold the event loop).
 */
const EXPORT_TIMEOUT_MS = 5000;

/** Tracing for this node, or null when no endpoint is configured. */
export function startTracing(config: TracingConfig, logger: Logger): Tracing | null {
  if (!tracingEnabled(config)) return null;
  const log = logger.child({ component: 'tracing' });
  const url = tracesUrl(config);
  const css = config.nodeType === 'CSS';
  const exporter = new OutageReportingExporter(new OTLPTraceExporter({ url, headers: parseOtlpHeaders(config.otlpHeaders), timeoutMillis: EXPORT_TIMEOUT_MS }), url, log);
  const ids = new DeliveryIdGenerator();
  const provider = new BasicTracerProvider({
    idGenerator: ids,
    resource: resourceFromAttributes({
      'service.name': config.otelServiceName !== '' ? config.otelServiceName : css ? 'edgesync-css' : 'edgesync-ess',
      'edgesync.node': css ? 'CSS' : `${config.orgID}/${config.destinationType}/${config.destinationID}`,
      'process.pid': process.pid,
    }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: config.traceExportDelay, exportTimeoutMillis: EXPORT_TIMEOUT_MS })],
  });
  const protocol = config.communicationProtocol;
  const events = new DeliveryTraces(provider.getTracer('edgesync'), ids, { ess: !css, ...(protocol === 'http' || protocol === 'mqtt' ? { transport: protocol } : {}) });
  log.info({ endpoint: url }, 'exporting delivery traces');
  return {
    events,
    shutdown: async () => {
      let timer: NodeJS.Timeout | undefined;
      const wait = exporter.failing ? SHUTDOWN_WAIT_DOWN_MS : SHUTDOWN_WAIT_MS;
      const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), wait).unref()));
      const outcome = await Promise.race([provider.shutdown().then(() => 'done' as const, () => 'done' as const), late]);
      clearTimeout(timer);
      // Deliveries still open have no span: the next run makes theirs when they end (README "Traces").
      if (outcome === 'late') log.warn({ endpoint: url }, 'stopped without exporting the last traces: the collector did not answer in time');
    },
  };
}

type ExportResult = Parameters<Parameters<SpanExporter['export']>[1]>[0];
/** ExportResultCode.SUCCESS of @opentelemetry/core, which is not ours to import. */
const SUCCESS = 0;

/**
 * A collector that is down must not flood the log or touch sync: one WARN when exports start
 * failing, one INFO when they work again; the batch processor drops what fails.
 */
export class OutageReportingExporter implements SpanExporter {
  private down = false;

  /** The last export failed. */
  get failing(): boolean {
    return this.down;
  }

  constructor(
    private readonly inner: SpanExporter,
    private readonly endpoint: string,
    private readonly log: Logger,
  ) {}

  export(spans: Parameters<SpanExporter['export']>[0], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      const failed = Number(result.code) !== SUCCESS;
      if (failed && !this.down) {
        this.down = true;
        this.log.warn({ endpoint: this.endpoint, err: result.error?.message ?? 'export failed' }, 'cannot export traces; dropping spans until the collector answers (sync is not affected)');
      } else if (!failed && this.down) {
        this.down = false;
        this.log.info({ endpoint: this.endpoint }, 'exporting traces again');
      }
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
