/**
 * Pair (a): the reference CSS (multi-org, dummy auth, bolt) and our ESS with its defaults, both
 * real processes on loopback. Runs when EDGESYNC_REFERENCE_BIN names the reference binary
 * (docs/interop.md); otherwise it is reported as skipped.
 */
import { jest } from '@jest/globals';
import { startReferenceCssOurEss } from '../helpers/interop-pair.js';
import { describeWithReference, interopScenarios } from './interop-scenarios.js';

jest.setTimeout(180_000);

describeWithReference('interop: reference CSS + edgesync ESS', (bin) => interopScenarios(bin, startReferenceCssOurEss));
