--
-- Joins
--
CREATE TABLE bc_city (city text, country text);
INSERT INTO bc_city VALUES ('London', 'UK'), ('Austin', 'US'), ('New York', 'US'), ('Paris', 'FR');
SELECT p.name, c.country FROM bc_people p JOIN bc_city c ON p.city = c.city ORDER BY p.name;
SELECT p.name, c.country FROM bc_people p LEFT JOIN bc_city c ON p.city = c.city ORDER BY p.name;
SELECT p.name, c.city FROM bc_people p RIGHT JOIN bc_city c ON p.city = c.city ORDER BY c.city, p.name;
SELECT p.name, c.city FROM bc_people p FULL JOIN bc_city c USING (city) ORDER BY 1, 2;
SELECT count(*) FROM bc_people CROSS JOIN bc_city;
SELECT name FROM bc_people p WHERE EXISTS (SELECT 1 FROM bc_city c WHERE c.city = p.city AND c.country = 'US') ORDER BY name;
SELECT name FROM bc_people WHERE city NOT IN (SELECT city FROM bc_city) ORDER BY name;
SELECT a.name, b.name FROM bc_people a JOIN bc_people b ON a.age < b.age AND b.age - a.age < 5 ORDER BY 1, 2;
DROP TABLE bc_city;
--
-- Joins on an expression of each side (hash-join keys), NULLs, negative remainders
--
CREATE TABLE bc_ej (a int, b int);
INSERT INTO bc_ej VALUES (1, 10), (2, 21), (-3, 30), (NULL, 40), (7, NULL), (12, 5), (-8, -2);
SELECT x.a, y.a FROM bc_ej x JOIN bc_ej y ON x.a % 5 = y.b % 5 ORDER BY 1, 2;
SELECT x.a, y.b FROM bc_ej x LEFT JOIN bc_ej y ON x.a + 1 = y.a * 2 ORDER BY 1 NULLS FIRST, 2;
SELECT x.a, y.b FROM bc_ej x FULL JOIN bc_ej y ON x.a::bigint % 3 = (y.b / 10)::int % 3 AND x.b > y.a ORDER BY 1, 2;
SELECT count(*) FROM bc_ej x JOIN bc_ej y ON -x.a = y.a - 0 AND (x.b - 1) * 2 = y.b * 2 - 2;
SELECT x.a, y.a FROM bc_ej x JOIN bc_ej y ON x.a % 4 = y.a % 4 AND x.a < y.a ORDER BY 1, 2;
DROP TABLE bc_ej;
