-- Transactions, savepoints, failed-transaction state, ON_ERROR_ROLLBACK, SET/SHOW.
\set VERBOSITY verbose
set client_min_messages = warning;
drop table if exists apigres_psql_tx;
reset client_min_messages;
create table apigres_psql_tx (id int primary key, note text);
begin;
insert into apigres_psql_tx values (1, 'in tx');
savepoint s1;
insert into apigres_psql_tx values (2, 'after s1');
rollback to savepoint s1;
insert into apigres_psql_tx values (3, 'after rollback to s1');
release savepoint s1;
commit;
select * from apigres_psql_tx order by id;
begin;
insert into apigres_psql_tx values (4, 'will be rolled back');
select 1/0;
select 'in aborted transaction';
commit;
select * from apigres_psql_tx order by id;
begin;
insert into apigres_psql_tx values (5, 'rolled back explicitly');
rollback;
begin isolation level repeatable read;
show transaction_isolation;
select count(*) from apigres_psql_tx;
end;
\set ON_ERROR_ROLLBACK on
begin;
insert into apigres_psql_tx values (6, 'kept');
insert into apigres_psql_tx values (6, 'duplicate, rolled back by psql savepoint');
insert into apigres_psql_tx values (7, 'also kept');
commit;
\set ON_ERROR_ROLLBACK off
select * from apigres_psql_tx order by id;
rollback;
commit;
savepoint outside;
-- SET / SHOW / ParameterStatus
show application_name;
set application_name = 'apigres test app';
show application_name;
set DateStyle = 'German, DMY';
select date '2024-02-29' as d;
show DateStyle;
reset DateStyle;
set TimeZone = 'America/New_York';
select timestamptz '2024-07-01 12:00:00+00' as ts;
set TimeZone = 'UTC';
select timestamptz '2024-07-01 12:00:00+00' as ts;
set IntervalStyle = 'iso_8601';
select interval '1 day 2 hours 3 minutes';
reset IntervalStyle;
set client_encoding to 'LATIN1';
\echo ENCODING=:ENCODING
\encoding
select convert_to('résumé', 'LATIN1') as latin1_bytes;
reset client_encoding;
\echo ENCODING=:ENCODING
set standard_conforming_strings = off;
select 'a\tb' as escaped;
reset standard_conforming_strings;
select 'a\tb' as not_escaped;
set search_path = pg_catalog, public;
show search_path;
set statement_timeout = '50ms';
select pg_sleep(1);
reset statement_timeout;
set local work_mem = '1MB';
begin;
set local work_mem = '2MB';
show work_mem;
commit;
show work_mem;
drop table apigres_psql_tx;
set no_such_setting = 1;
set work_mem = 'lots';
reset all;
show application_name;
discard all;
