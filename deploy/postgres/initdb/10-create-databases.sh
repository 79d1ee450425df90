#!/bin/sh
# Create the roles and databases of the stack. The postgres image runs this once, when it
# initialises an empty data volume; later password changes need ALTER ROLE (docs/deployment.md).
#
#   temporal   owns temporal and temporal_visibility (Temporal's persistence and visibility)
#   videoq     owns videoq (the projection of jobs)
#
# Each role can connect only to its own databases, so the API and the workers cannot read
# Temporal's tables. psql passes the passwords as variables (:'name'), which quotes them as literals.
set -eu

psql --set ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname postgres \
    --set temporal_password="${TEMPORAL_DB_PASSWORD}" \
    --set videoq_password="${PROJECTION_DB_PASSWORD}" <<'SQL'
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE ROLE videoq LOGIN PASSWORD :'videoq_password';

CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
CREATE DATABASE videoq OWNER videoq;

-- New databases let every role connect through PUBLIC; keep each to its owner.
REVOKE CONNECT ON DATABASE temporal, temporal_visibility, videoq FROM PUBLIC;
SQL
