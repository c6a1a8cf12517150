-- Event rules: alert rules whose alerts traps and syslog messages open and clear
-- (`EventRuleSpec`, JSON; NULL for a metric rule).
ALTER TABLE alert_definitions ADD COLUMN event TEXT;
-- The last event that opened or refreshed an event rule's alert: its expiry counts from it.
ALTER TABLE alerts ADD COLUMN last_event_at INTEGER;
-- The rules judge the events stored after this one (not those received before they existed).
INSERT OR IGNORE INTO settings (key, value, updated_at)
    SELECT 'event_rules_cursor', CAST(coalesce(max(id), 0) AS TEXT), CAST(strftime('%s', 'now') AS INTEGER)
      FROM events;
