/** Says out loud which suites cannot run on this machine, so a skip is never silent. */
export default function globalSetup() {
  if (process.env.EDGESYNC_TEST_MONGO_URL === undefined) {
    process.stdout.write('\n[edgesync] SKIPPED: MongoStore contract suite (no MongoDB here; set EDGESYNC_TEST_MONGO_URL to run it)\n');
  } else {
    process.stdout.write('\n[edgesync] SKIPPED: MongoStore contract suite (MongoStore is not implemented yet; later issue)\n');
  }
  if (process.env.EDGESYNC_REFERENCE_BIN === undefined || process.env.EDGESYNC_REFERENCE_BIN === '') {
    process.stdout.write('[edgesync] SKIPPED: interop suites against the reference (set EDGESYNC_REFERENCE_BIN to its binary; see docs/interop.md)\n');
  }
}
