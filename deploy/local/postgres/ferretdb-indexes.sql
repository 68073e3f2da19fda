-- Indexes FerretDB 1.24 can use, for the local runtime's PostgreSQL (production runs MongoDB).
--
-- FerretDB turns every equality filter, on _id too, into `_jsonb -> 'field' @> value`, which the
-- btree indexes it creates on `_jsonb -> 'field'` cannot serve: every lookup read the whole
-- collection (20,000 documents: 48 ms per find_one; 100,000: 144 ms). A GIN index on the same
-- expression serves `@>` (100,000 documents: about 1 ms). This event trigger gives each btree
-- index FerretDB creates a GIN twin per expression; the block at the end does the same for the
-- indexes that existed before. Run at every start; every statement may be repeated.

SET client_min_messages = warning;

CREATE OR REPLACE FUNCTION qinglian_gin_twins_of(btree oid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    field text;
    target regclass;
BEGIN
    SELECT indrelid::regclass INTO target FROM pg_index WHERE indexrelid = btree;
    FOR field IN
        SELECT DISTINCT (regexp_matches(pg_get_indexdef(btree),
                                        '_jsonb -> ''((?:[^'']|'''')+)''::text', 'g'))[1]
    LOOP
        EXECUTE format(
            'CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((_jsonb -> %L) jsonb_path_ops)',
            'gin_' || md5(target::text || '/' || field), target, replace(field, '''''', ''''));
    END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION qinglian_gin_twins() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
    made record;
BEGIN
    FOR made IN
        SELECT objid FROM pg_event_trigger_ddl_commands() commands
        JOIN pg_class class ON class.oid = commands.objid
        JOIN pg_am method ON method.oid = class.relam
        WHERE commands.command_tag = 'CREATE INDEX' AND method.amname = 'btree'
    LOOP
        PERFORM qinglian_gin_twins_of(made.objid);
    END LOOP;
END;
$$;

DROP EVENT TRIGGER IF EXISTS qinglian_gin_twins;
CREATE EVENT TRIGGER qinglian_gin_twins ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
    EXECUTE FUNCTION qinglian_gin_twins();

DO $$
DECLARE
    existing record;
BEGIN
    FOR existing IN
        SELECT class.oid FROM pg_class class
        JOIN pg_am method ON method.oid = class.relam
        JOIN pg_namespace namespace ON namespace.oid = class.relnamespace
        WHERE class.relkind = 'i' AND method.amname = 'btree'
          AND namespace.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
          AND pg_get_indexdef(class.oid) LIKE '%_jsonb -> %'
    LOOP
        PERFORM qinglian_gin_twins_of(existing.oid);
    END LOOP;
END;
$$;
