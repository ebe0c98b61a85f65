/** Placeholder until lib/store/mongo exists: visibly skipped, never silently green. */
import { describe, it } from '@jest/globals';

const url = process.env.EDGESYNC_TEST_MONGO_URL;
const title = url === undefined ? 'MongoStore contract (set EDGESYNC_TEST_MONGO_URL to run)' : 'MongoStore contract: MongoStore not implemented yet (later issue)';

console.warn(`Skipped: ${title}`);

describe.skip(title, () => {
  it('runs storeContract against a MongoStore', () => {
    // Will become: storeContract('MongoStore', () => openMongoStore(url)) and
    // aclStoreContract('MongoStore', () => openMongoStore(url), { teardown, reopen }) (acl-store.contract.ts).
  });
});
