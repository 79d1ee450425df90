#!/bin/sh
# Wait until the Temporal server reports SERVING, then create the namespace if it is missing.
#
# The temporalio/server image creates no namespace. Reads TEMPORAL_ADDRESS, NAMESPACE and
# RETENTION (how long Temporal keeps a closed workflow's history, such as 168h).
set -eu

attempts=60
until temporal operator cluster health --address "${TEMPORAL_ADDRESS}"; do
    attempts=$((attempts - 1))
    if [ "${attempts}" -le 0 ]; then
        echo "Temporal at ${TEMPORAL_ADDRESS} did not report SERVING within 5 minutes" >&2
        exit 1
    fi
    sleep 5
done

if temporal operator namespace describe --address "${TEMPORAL_ADDRESS}" \
        --namespace "${NAMESPACE}" > /dev/null 2>&1; then
    echo "namespace ${NAMESPACE} already exists"
else
    temporal operator namespace create --address "${TEMPORAL_ADDRESS}" \
        --namespace "${NAMESPACE}" --retention "${RETENTION}"
    echo "created namespace ${NAMESPACE} with retention ${RETENTION}"
fi
