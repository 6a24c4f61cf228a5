-- An event's created_at is its id's time (ids sort by time), so the index on
-- (business_id, id) serves scans by time: tailing the event stream reads a
-- range of ids. One index less written per event.
DROP INDEX event_business_created;
