--
-- Errors and their effect on transactions
--
SELECT 1 / 0;
SELECT nosuchcolumn FROM bc_people;
SELECT * FROM bc_nosuchtable;
SELECT FROM WHERE;
INSERT INTO bc_people VALUES (1, 'Dup', NULL, 1);
INSERT INTO bc_people (id) VALUES (99);
SELECT 'abc'::int;
SELECT name + 1 FROM bc_people;
BEGIN;
SELECT count(*) FROM bc_people;
SELECT 1 / 0;
SELECT count(*) FROM bc_people;
ROLLBACK;
BEGIN;
INSERT INTO bc_people VALUES (6, 'Tony', 'Oxford', 90);
ROLLBACK;
SELECT count(*) FROM bc_people;
