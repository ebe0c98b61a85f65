#!/bin/sh
# mongod as a single-node replica set with access control. A replica set with users needs a
# key file for its members' mutual authentication; one member still needs it, so it is made
# here on first start, inside the data volume (never in the repository or the image).
# The replica set itself is initiated by the compose file's health check (rs.initiate once).
set -eu
key=/data/db/replica.key
if [ ! -f "$key" ]; then
  head -c 756 /dev/urandom | base64 > "$key"
fi
chmod 400 "$key"
chown 999:999 "$key"
exec docker-entrypoint.sh mongod --replSet rs0 --bind_ip_all --keyFile "$key"
