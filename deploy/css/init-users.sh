#!/bin/sh
# One-shot: puts the compose file's identities into a CSS's users file
# (<PERSISTENCE_ROOT_PATH>/sync/users.json, hashed), so that the CSS prints no generated admin
# password and the two ESS nodes can log in. Run once per CSS data volume; running it again
# keeps what is there (an identity that exists is left as it is).
#   CSS_ADMIN_PASSWORD           the sync admin `admin`
#   EDGE_ORG                     the ESS nodes' org
#   ESS_HTTP_TYPE/ESS_HTTP_ID/ESS_HTTP_PASSWORD   the HTTP ESS (app key org/type/id)
#   ESS_MQTT_TYPE/ESS_MQTT_ID/ESS_MQTT_PASSWORD   the MQTT ESS
# EDGESYNC names the program (the deploy-files test runs this script on the build in dist/).
set -eu
: "${CSS_ADMIN_PASSWORD:?}" "${EDGE_ORG:?}" "${ESS_HTTP_TYPE:?}" "${ESS_HTTP_ID:?}" "${ESS_HTTP_PASSWORD:?}" "${ESS_MQTT_TYPE:?}" "${ESS_MQTT_ID:?}" "${ESS_MQTT_PASSWORD:?}"
edgesync="${EDGESYNC:-node /app/dist/cmd/edgesync.js}"

add() {
  # $edgesync is a command line of several words on purpose.
  # shellcheck disable=SC2086
  if ! out=$($edgesync users add "$@" 2>&1); then
    case "$out" in
      *"already exists"*) echo "kept: $1" ;;
      *) echo "$out" >&2; exit 1 ;;
    esac
  else
    echo "added: $1"
  fi
}

add admin --type syncadmin --secret "$CSS_ADMIN_PASSWORD"
add "$EDGE_ORG/$ESS_HTTP_TYPE/$ESS_HTTP_ID" --type edgenode --org "$EDGE_ORG" --username "$ESS_HTTP_TYPE/$ESS_HTTP_ID" --secret "$ESS_HTTP_PASSWORD"
add "$EDGE_ORG/$ESS_MQTT_TYPE/$ESS_MQTT_ID" --type edgenode --org "$EDGE_ORG" --username "$ESS_MQTT_TYPE/$ESS_MQTT_ID" --secret "$ESS_MQTT_PASSWORD"
