-- Functions with float8 and numeric overloads: an integer or untyped argument takes
-- float8 (the preferred numeric type); two-argument forms exist only for numeric.
SELECT pg_typeof(round(7)), round(7), pg_typeof(round(7, 1)), round(7, 1);
SELECT pg_typeof(round('2.5')), round('2.5');
SELECT round(2.5::float8), round(3.5::float8), round(-2.5::float8), round(0.5::float8), round(-0.5::float8);
SELECT round(2.5), round(-2.5), round(2.45, 1);
SELECT pg_typeof(floor(2)), floor(-3), pg_typeof(ceil(3::int8)), ceiling(7), ceil(-1.5::float8);
SELECT pg_typeof(trunc(5)), trunc(-7), pg_typeof(trunc(5, 1)), trunc(5, 1), trunc(-1.99::float8);
SELECT pg_typeof(sign(-3)), sign(-3), sign(0::int2), sign(-2.5), pg_typeof(sign(-2.5));
SELECT pg_typeof(log(1000)), log(1000), log(2::int2), pg_typeof(log(10, 1000)), log(10, 1000);
SELECT pg_typeof(log('100')), log('100'), log(100.0), pg_typeof(log(100.0));
CREATE TABLE num_overloads (i int4, b int8);
INSERT INTO num_overloads VALUES (1, 10), (2, 100), (3, 1000);
SELECT i, round(i / 2), log(b), sign(i - 2), floor(b / 3), pg_typeof(round(sum(b) OVER ())) FROM num_overloads ORDER BY i;
SELECT round(sum(b)), pg_typeof(round(sum(b))), round(avg(b)), pg_typeof(round(avg(b))) FROM num_overloads;
DROP TABLE num_overloads;
