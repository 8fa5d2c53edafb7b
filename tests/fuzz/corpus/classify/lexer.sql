/* a /* nested */ comment */ -- line
(( SELECT 'it''s;' , E'\';', "q;""x" )) ; PREPARE p(text) AS UPDATE "stripe"."customer" SET id = $1