-- A collector's automatic parents: the node its wiring is followed from (towards the
-- collector); NULL: off. The server sets the parents of the collector's nodes from the links
-- after each neighbour walk.
ALTER TABLE remote_components ADD COLUMN parents_root INTEGER REFERENCES nodes (id) ON DELETE SET NULL;
