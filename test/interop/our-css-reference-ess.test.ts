/**
 * Pair (b): our CSS in multi-org mode (dummy auth, no organization created beforehand) and the
 * reference ESS (dummy auth, bolt), both real processes on loopback. Runs when
 * EDGESYNC_REFERENCE_BIN names the reference binary (docs/interop.md); otherwise it is reported
 * as skipped.
 */
import { jest } from '@jest/globals';
import { startOurCssReferenceEss } from '../helpers/interop-pair.js';
import { describeWithReference, interopScenarios } from './interop-scenarios.js';

jest.setTimeout(180_000);

describeWithReference('interop: edgesync CSS + reference ESS', (bin) =>
  interopScenarios(bin, startOurCssReferenceEss, { largeEdgeToCloud: true }),
);
