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
