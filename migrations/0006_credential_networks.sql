-- The networks (CIDRs, JSON list) a credential may be attached to and sent to. Empty: only an
-- admin may attach it (anywhere).
ALTER TABLE credentials ADD COLUMN networks TEXT NOT NULL DEFAULT '[]';
