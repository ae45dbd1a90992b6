--
-- DDL: tables, defaults, constraints, sequences
--
CREATE TABLE bc_ddl (a int PRIMARY KEY, b text DEFAULT 'none', c numeric(10,2) NOT NULL);
INSERT INTO bc_ddl (a, c) VALUES (1, 1.5);
INSERT INTO bc_ddl VALUES (2, 'two', 2.25);
SELECT * FROM bc_ddl ORDER BY a;
-- duplicate table
CREATE TABLE bc_ddl (x int);
CREATE TABLE IF NOT EXISTS bc_ddl (x int);
ALTER TABLE bc_ddl ADD COLUMN d boolean DEFAULT true;
SELECT a, d FROM bc_ddl ORDER BY a;
CREATE SEQUENCE bc_seq START 10;
SELECT nextval('bc_seq'), nextval('bc_seq');
DROP SEQUENCE bc_seq;
TRUNCATE bc_ddl;
SELECT count(*) FROM bc_ddl;
DROP TABLE bc_ddl;
DROP TABLE bc_ddl;
DROP TABLE IF EXISTS bc_ddl;
