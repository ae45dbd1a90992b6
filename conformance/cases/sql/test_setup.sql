--
-- Setup for Borealis' own cases: one small table the other files read.
--
CREATE TABLE bc_people (id int PRIMARY KEY, name text NOT NULL, city text, age int);
INSERT INTO bc_people VALUES
  (1, 'Ada', 'London', 36),
  (2, 'Grace', 'New York', 85),
  (3, 'Edsger', 'Austin', 72),
  (4, 'Barbara', NULL, 84),
  (5, 'Ken', 'Berkeley', 80);
SELECT count(*) FROM bc_people;
