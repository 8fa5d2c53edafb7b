-- Errors with ON_ERROR_STOP off, the rest of the script runs; notices and warnings.
\set VERBOSITY verbose
select 1/0;
\echo SQLSTATE=:SQLSTATE ERROR=:ERROR
\echo LAST_ERROR_SQLSTATE=:LAST_ERROR_SQLSTATE
\echo LAST_ERROR_MESSAGE=:LAST_ERROR_MESSAGE
select * from no_such_table;
selec 1;
select 'unterminated;
';
select 1 \; select no_such_column \; select 3;
select 'after errors' as still_alive;
do $$ begin raise notice 'a notice: %', 42; end $$;
do $$ begin raise warning 'a warning' using detail = 'some detail', hint = 'some hint'; end $$;
do $$
begin
  raise notice 'first';
  raise info 'an info message';
  raise log 'a log message, not sent to the client by default';
  raise notice 'second' using errcode = '01000';
end $$;
set client_min_messages = debug1;
do $$ begin raise debug 'a debug message'; end $$;
reset client_min_messages;
do $$ begin raise exception 'custom failure %', 7 using errcode = 'P0001', detail = 'the detail', hint = 'the hint'; end $$;
\errverbose
do $$ begin raise sqlstate '22023' using message = 'invalid parameter, raised'; end $$;
create function pg_temp.noisy(i int) returns int language plpgsql as $$
begin raise notice 'row %', i; return i * 10; end $$;
select pg_temp.noisy(g) from generate_series(1, 3) g;
drop table if exists no_such_table_either;
-- a regular table, so that the schema name in the error fields is fixed
set client_min_messages = warning;
drop table if exists apigres_psql_uniq;
reset client_min_messages;
create table apigres_psql_uniq (id int primary key, v text check (v <> 'bad'));
insert into apigres_psql_uniq values (1, 'ok');
insert into apigres_psql_uniq values (1, 'dup');
insert into apigres_psql_uniq values (2, 'bad');
insert into apigres_psql_uniq values (null, 'x');
select 1 from pg_class where oid = 'nosuchtype'::regtype;
select 'x'::int;
select 12345678901::int4;
select (array[1,2])[3:2] as empty_slice, (array[1,2])[5] as out_of_range;
drop table apigres_psql_uniq;
select pg_sleep(0.01) as slept;
\echo done
