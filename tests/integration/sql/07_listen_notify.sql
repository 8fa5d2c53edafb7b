-- LISTEN/NOTIFY inside one session: psql prints the notification after the next command.
\set VERBOSITY verbose
select pg_backend_pid() as mypid \gset
\echo MYPID :mypid
listen apigres_chan;
notify apigres_chan;
notify apigres_chan, 'with payload';
select pg_notify('apigres_chan', 'via pg_notify: ünïcødé 🐘');
begin;
notify apigres_chan, 'in transaction 1';
notify apigres_chan, 'in transaction 2';
notify apigres_chan, 'in transaction 1';
select 'not yet delivered' as before_commit;
commit;
begin;
notify apigres_chan, 'rolled back';
rollback;
listen "Quoted Chan";
notify "Quoted Chan", 'quoted';
unlisten apigres_chan;
notify apigres_chan, 'not received after unlisten';
select 1 as after_unlisten;
unlisten *;
notify "Quoted Chan", 'not received either';
select 2 as the_end;
