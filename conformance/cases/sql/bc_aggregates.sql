--
-- Aggregates, grouping, ordering
--
SELECT count(*), count(city), sum(age), min(age), max(age) FROM bc_people;
SELECT avg(age) FROM bc_people;
SELECT city IS NULL AS no_city, count(*) FROM bc_people GROUP BY 1 ORDER BY 1;
SELECT age / 10 * 10 AS decade, count(*), string_agg(name, ' ' ORDER BY name)
  FROM bc_people GROUP BY 1 HAVING count(*) > 1 ORDER BY 1;
SELECT DISTINCT age > 75 AS senior FROM bc_people ORDER BY 1;
SELECT name, age FROM bc_people ORDER BY age DESC LIMIT 2 OFFSET 1;
SELECT sum(age) FILTER (WHERE city IS NOT NULL) FROM bc_people;
SELECT count(*) FROM bc_people WHERE false;
SELECT sum(age), max(name) FROM bc_people WHERE false;
SELECT coalesce(city, '(none)'), length(name) FROM bc_people ORDER BY id;
SELECT 7 / 2, 7 % 3, 7.0 / 2, -7 / 2, 2 ^ 10;
