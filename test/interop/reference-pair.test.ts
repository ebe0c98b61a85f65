/**
 * Control: the reference on both sides runs the same scenarios, which shows that they expect
 * what the reference itself does. Runs when EDGESYNC_REFERENCE_BIN names the reference binary
 * (docs/interop.md); otherwise it is reported as skipped.
 */
import { jest } from '@jest/globals';
import { startReferencePair } from '../helpers/interop-pair.js';
import { describeWithReference, interopScenarios } from './interop-scenarios.js';

jest.setTimeout(180_000);

describeWithReference('interop control: reference CSS + reference ESS', (bin) => interopScenarios(bin, startReferencePair));
