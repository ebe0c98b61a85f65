/**
 * Who is calling. The kinds mirror the reference's auth codes so that its ACL rules carry over.
 * [ref rest-api §4]
 */
export type Role =
  /** AuthSyncAdmin: everything, in every org; usually has no org. */
  | 'syncAdmin'
  /** AuthAdmin: org admin. */
  | 'admin'
  /** AuthObjectAdmin: like admin for objects, except `agent_upgrade_manifests`. */
  | 'objectAdmin'
  /** AuthUser: checked against objects/destinations ACL entries of type `user`. */
  | 'user'
  /** AuthNodeUser: exchange node credentials, ACL entries of type `node`. */
  | 'node'
  /** AuthService: an edge service `svcOrg/version/svcName`. */
  | 'service'
  /** AuthEdgeNode: an ESS (`destType/destID`); only valid on the SPI. */
  | 'edgeNode';

export interface Identity {
  role: Role;
  /** Org the identity belongs to; "" for a sync admin without org. */
  orgID: string;
  /** User name, `destType/destID` for an edge node, `svcOrg/version/svcName` for a service. */
  userID: string;
}

/** Checks HTTP Basic credentials. */
export interface Authenticator {
  /** `preset`, `dummy` or `external`, for logs and health; also the passport strategy's name. */
  readonly name: string;
  /** The identity, or null when the credentials are not accepted. */
  authenticate(appKey: string, secret: string): Promise<Identity | null>;
}
