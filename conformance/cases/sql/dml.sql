--
-- DML: INSERT / UPDATE / DELETE, RETURNING, ON CONFLICT
--
CREATE TABLE bc_dml (k int PRIMARY KEY, v text, n int DEFAULT 0);
INSERT INTO bc_dml VALUES (1, 'one'), (2, 'two'), (3, 'three') RETURNING k, v;
UPDATE bc_dml SET n = n + k * 10 WHERE k >= 2 RETURNING *;
DELETE FROM bc_dml WHERE v LIKE 't%' RETURNING k;
SELECT * FROM bc_dml ORDER BY k;
INSERT INTO bc_dml VALUES (1, 'uno') ON CONFLICT (k) DO UPDATE SET v = excluded.v;
INSERT INTO bc_dml VALUES (1, 'ein') ON CONFLICT DO NOTHING;
SELECT * FROM bc_dml ORDER BY k;
INSERT INTO bc_dml (k, v) SELECT id + 100, name FROM bc_people WHERE age > 80;
SELECT k, v, n FROM bc_dml ORDER BY k;
UPDATE bc_dml SET v = upper(v);
SELECT string_agg(v, ',' ORDER BY k) FROM bc_dml;
DROP TABLE bc_dml;
