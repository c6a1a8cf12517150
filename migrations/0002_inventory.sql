-- Inventory: node history in the console reads the audit log by target.
CREATE INDEX audit_log_target ON audit_log (target);
