/**
 * Whether spans are exported at all, apart from tracing.ts: that module loads the OpenTelemetry
 * SDK and exporter (about 18 MiB and 80 ms at start), which a node without an OTLP endpoint
 * must not pay for. The same test decides the log lines' `traceId`.
 */
import type { Config } from '../config/index.js';

export function tracingEnabled(config: Pick<Config, 'otlpEndpoint' | 'otlpTracesEndpoint'>): boolean {
  return config.otlpEndpoint !== '' || config.otlpTracesEndpoint !== '';
}
