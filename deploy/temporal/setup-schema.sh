#!/bin/sh
# Bring the schemas of Temporal's two databases to the version of this admin-tools image.
#
# Both steps are idempotent. setup-schema records version 0.0 only in an empty database, and
# update-schema applies only the versions newer than the recorded one. So this runs on every
# `docker compose up`, and after the admin-tools image is bumped it performs the schema upgrade.
# The databases and the temporal role come from deploy/postgres/initdb/10-create-databases.sh.
# temporal-sql-tool reads the password from SQL_PASSWORD.
set -eu

SCHEMA_ROOT=/etc/temporal/schema/postgresql/v12

setup() {
    database=$1
    schema_dir=$2
    echo "Temporal schema of database ${database}: setting up from ${schema_dir}"
    temporal-sql-tool --plugin postgres12 --ep postgresql -p 5432 -u temporal \
        --db "${database}" setup-schema -v 0.0
    temporal-sql-tool --plugin postgres12 --ep postgresql -p 5432 -u temporal \
        --db "${database}" update-schema -d "${schema_dir}"
}

setup temporal "${SCHEMA_ROOT}/temporal/versioned"
setup temporal_visibility "${SCHEMA_ROOT}/visibility/versioned"
echo "Temporal schemas are current"
