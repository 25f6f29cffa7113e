-- Local stack only (deploy/compose.yaml): one database per service, as in production
-- ("database per service": no practice reads another's tables).
--
-- The postgres image runs this once, when its data volume is empty, as the superuser named by
-- POSTGRES_USER (itsm). To run it again: docker compose -f deploy/compose.yaml down -v
--
-- Each service owns its schema through `itsm migrate <service>`; nothing else is created here.

CREATE DATABASE itsm_incidents;
CREATE DATABASE itsm_problems;
CREATE DATABASE itsm_changes;
CREATE DATABASE itsm_requests;
CREATE DATABASE itsm_cmdb;
CREATE DATABASE itsm_sla;
CREATE DATABASE itsm_knowledge;
CREATE DATABASE itsm_identity;
