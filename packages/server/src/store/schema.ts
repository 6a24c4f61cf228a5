/** Row types of every table, as Kysely sees them. Times are Unix milliseconds. */
import type { Generated } from "kysely";

export interface SettingTable {
  key: string;
  value: string;
}

export interface BusinessTable {
  id: string;
  name: string;
  created_at: number;
}

export interface ApiClientTable {
  id: string;
  business_id: string;
  name: string;
  secret_hash: string;
  /** Space-separated scope names. */
  scopes: string;
  created_at: number;
  revoked_at: number | null;
}

export interface RefreshTokenTable {
  token_hash: string;
  client_id: string;
  /** Every token issued from one login shares a family; reuse of a spent token revokes the family. */
  family_id: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  revoked_at: number | null;
}

export type SubscriptionState = "active" | "degraded" | "disabled";

export interface SubscriptionTable {
  id: string;
  business_id: string;
  endpoint: string;
  /** The normalised endpoint, unique per business among live subscriptions. */
  endpoint_key: string;
  /** JSON array of event names. */
  event_names: string;
  protocol: string;
  /** Sealed by the KeyBox; never the plain key. */
  signing_key: string | null;
  previous_signing_key: string | null;
  previous_key_expires_at: number | null;
  state: Generated<SubscriptionState>;
  state_reason: string | null;
  state_changed_at: number;
  failure_streak: Generated<number>;
  failing_since: number | null;
  probe_at: number | null;
  client_id: string;
  created_by: string;
  updated_by: string;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
}

export interface Database {
  setting: SettingTable;
  business: BusinessTable;
  api_client: ApiClientTable;
  refresh_token: RefreshTokenTable;
  subscription: SubscriptionTable;
}
