-- Basic queries, several statements per Query message, psql variables, empty queries.
\set VERBOSITY verbose
select 1 as one, 'two'::text as two, null::int as three;
select 1 \; select 2 \; select 'three' as third;
\echo ROW_COUNT=:ROW_COUNT ERROR=:ERROR
;
select;
-- a statement-less query: only a comment
-- an empty result set and a command with a row count
select * from generate_series(1, 0) g;
create temp table basic_t (id int primary key, name text);
insert into basic_t select g, 'name ' || g from generate_series(1, 5) g;
\echo ROW_COUNT=:ROW_COUNT
update basic_t set name = upper(name) where id > 3;
delete from basic_t where id = 1 returning *;
select * from basic_t order by id;
\x on
select * from basic_t where id = 2;
\x off
select * from basic_t order by id \gx
select count(*) as n, max(id) as m from basic_t \gset
\echo n=:n m=:m
select 'a' as x \g
select i, i * i as sq, md5(i::text) from generate_series(1, 5000) i;
select repeat('abcdefghij', 100000) as long_text;
select length(repeat('x', 5000000)) as five_million;
\echo SERVER_VERSION_NUM=:SERVER_VERSION_NUM
\echo ENCODING=:ENCODING
