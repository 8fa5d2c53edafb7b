-- SQL-level PREPARE/EXECUTE/DEALLOCATE and \gdesc.
\set VERBOSITY verbose
prepare p1(int, text) as select $1 + 1 as next, upper($2) as up;
execute p1(41, 'abc');
execute p1(1, 'x');
prepare p2 as select aid, abalance from pgbench_accounts where aid = $1;
execute p2(1);
execute p2(100000);
execute p2(0);
prepare p1 as select 1;
execute p3;
execute p1('not an int', 'x');
select name, statement, parameter_types from pg_prepared_statements order by name;
deallocate p1;
execute p1(1, 'x');
deallocate all;
select count(*) from pg_prepared_statements;
select 1 as a, 'x'::text as b, now()::timestamptz as c, null::numeric(10,2) as d \gdesc
select aid, bid, abalance, filler from pgbench_accounts \gdesc
insert into pgbench_history values (0) \gdesc
select from_nowhere \gdesc
select count(*) from pgbench_accounts;
select sum(abalance) = (select sum(bbalance) from pgbench_branches) as consistent from pgbench_accounts;
explain (costs off) select * from pgbench_accounts where aid = 5;
