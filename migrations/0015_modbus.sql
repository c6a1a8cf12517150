-- Modbus: the unit id a node answers to (behind a gateway, each device has its own); NULL:
-- its template's profile says (else 1).
ALTER TABLE nodes ADD COLUMN modbus_unit INTEGER CHECK (modbus_unit IS NULL OR modbus_unit BETWEEN 0 AND 255);
