-- Clinic records, the transactional outbox (event + delivery), the access log and idempotency keys.

CREATE TABLE appointment (
  id TEXT PRIMARY KEY,
  business_id TEXT NOT NULL REFERENCES business (id),
  doctor_id TEXT NOT NULL,
  patient_id TEXT NOT NULL,
  clinic_id TEXT NOT NULL,
  partner_appointment_id TEXT,
  partner_doctor_id TEXT,
  partner_patient_id TEXT,
  partner_clinic_id TEXT,
  status TEXT NOT NULL,
  mode TEXT NOT NULL,
  channel TEXT,
  start_time INTEGER NOT NULL,
  end_time INTEGER NOT NULL,
  payment TEXT,
  prescription_id TEXT,
  notes TEXT,
  custom_attributes TEXT,
  partner_meta TEXT,
  cancelled_by TEXT,
  created_by TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX appointment_business ON appointment (business_id, id);
CREATE INDEX appointment_business_start ON appointment (business_id, start_time);

CREATE TABLE prescription (
  id TEXT PRIMARY KEY,
  business_id TEXT NOT NULL REFERENCES business (id),
  appointment_id TEXT,
  doctor_id TEXT NOT NULL,
  patient_id TEXT NOT NULL,
  clinic_id TEXT NOT NULL,
  current_version INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX prescription_business ON prescription (business_id, id);

CREATE TABLE prescription_version (
  prescription_id TEXT NOT NULL REFERENCES prescription (id),
  version INTEGER NOT NULL,
  doctor_name TEXT,
  patient_name TEXT,
  details TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (prescription_id, version)
);

-- The payload is the exact text that is signed and sent, byte for byte.
CREATE TABLE event (
  id TEXT PRIMARY KEY,
  business_id TEXT NOT NULL REFERENCES business (id),
  name TEXT NOT NULL,
  resource_type TEXT NOT NULL,
  resource_id TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX event_business ON event (business_id, id);

CREATE TABLE delivery (
  id TEXT PRIMARY KEY,
  event_id TEXT NOT NULL REFERENCES event (id),
  subscription_id TEXT NOT NULL REFERENCES subscription (id),
  business_id TEXT NOT NULL,
  event_name TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'in_flight', 'succeeded', 'failed', 'cancelled')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,
  lease_token TEXT,
  lease_expires_at INTEGER,
  last_status_code INTEGER,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (event_id, subscription_id)
);
CREATE INDEX delivery_subscription ON delivery (subscription_id, id);
CREATE INDEX delivery_due ON delivery (subscription_id, next_attempt_at) WHERE status = 'pending';

-- Append-only: nothing in the API updates or deletes these rows.
CREATE TABLE access_log (
  id TEXT PRIMARY KEY,
  business_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  resource_type TEXT NOT NULL,
  resource_id TEXT,
  resource_ids TEXT,
  outcome TEXT NOT NULL CHECK (outcome IN ('allowed', 'forbidden', 'not_found')),
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  request_id TEXT NOT NULL,
  ip TEXT,
  user_agent TEXT,
  created_at INTEGER NOT NULL
);
CREATE INDEX access_log_business ON access_log (business_id, id);
CREATE INDEX access_log_resource ON access_log (business_id, resource_type, resource_id);

CREATE TABLE idempotency_key (
  client_id TEXT NOT NULL,
  key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  status_code INTEGER,
  response_body TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (client_id, key)
);
CREATE INDEX idempotency_key_expiry ON idempotency_key (expires_at);
