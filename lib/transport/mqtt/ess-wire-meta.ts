/**
 * The metadata in the ESS's control messages, addressed as the CSS reads it: about an object the
 * ESS receives, the CSS finds its record by the destination fields; about one the ESS published,
 * by the origin fields. [ref mqttCommunication processMessage] The reference sends the object's
 * full metadata in every message; the link remembers the last it saw of each object to do the
 * same for the actions the agent sends with ids only.
 */
import { emptyMetaData, orderedMetaData, type MetaData } from '../../model/index.js';
import type { EssObjectRef } from '../../sync/ess/css-link.js';

export interface EssIdentity {
  orgID: string;
  destinationType: string;
  destinationID: string;
}

/**
 * Objects whose last metadata is remembered; for others a metadata made of the ids goes, which
 * is all a CSS reads of an ack.
 */
const META_MEMORY = 1_000;

const objectKey = (objectType: string, objectID: string): string => `${objectType}\u0000${objectID}`;

export class EssWireMeta {
  private readonly seen = new Map<string, MetaData>();

  constructor(private readonly self: EssIdentity) {}

  /** Keeps the latest metadata of an object (least recently seen forgotten first). */
  remember(meta: MetaData): void {
    const key = objectKey(meta.objectType, meta.objectID);
    this.seen.delete(key);
    this.seen.set(key, meta);
    if (this.seen.size > META_MEMORY) this.seen.delete(this.seen.keys().next().value!);
  }

  /** The metadata last seen for `ref`'s object, else one made of `ref`; with `ref`'s ids. */
  of(ref: EssObjectRef): MetaData {
    const seen = this.seen.get(objectKey(ref.objectType, ref.objectID));
    return { ...(seen ?? emptyMetaData()), objectType: ref.objectType, objectID: ref.objectID, instanceID: ref.instanceID, dataID: ref.dataID };
  }

  /**
   * About an object this ESS receives: the destination fields name this ESS.
   * [ref processMessage: updated, received, consumed, ackDelete, deleted, getdata, feedback]
   */
  asReceiver(meta: MetaData): MetaData {
    const { orgID, destinationType, destinationID } = this.self;
    return orderedMetaData({ ...meta, destinationOrgID: orgID, destinationType, destinationID });
  }

  /**
   * About an object this ESS published: the origin is this ESS. The destination fields name it
   * too, as the reference ESS sends an update (traffic mqtt-ess-to-css.jsonl seq 1; its acks
   * leave them empty, which the CSS ignores), except beside a destination policy, which excludes
   * a destination type.
   */
  asOrigin(meta: MetaData): MetaData {
    const { orgID, destinationType, destinationID } = this.self;
    const here = meta.destinationPolicy === null ? { destinationType, destinationID } : {};
    return orderedMetaData({ ...meta, destinationOrgID: orgID, ...here, originType: destinationType, originID: destinationID });
  }
}
