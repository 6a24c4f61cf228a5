-- Tailing the event stream scans a business's events by time.
CREATE INDEX event_business_created ON event (business_id, created_at, id);
