#!/bin/sh
# Writes mosquitto's password file and ACL from the environment, then becomes mosquitto.
#   MQTT_CSS_USER / MQTT_CSS_PASSWORD      the CSS processes' broker user (all topics)
#   MQTT_ESS_USER / MQTT_ESS_PASSWORD      the MQTT ESS's user, org/type/id as on the CSS
#   MQTT_ESS_TYPE / MQTT_ESS_ID            that ESS's destination type and id: its topics only
# MOSQUITTO_CONF and MOSQUITTO_DATA move the files (the deploy-files test runs this script).
set -eu
conf="${MOSQUITTO_CONF:-/mosquitto/config/mosquitto.conf}"
data="${MOSQUITTO_DATA:-/mosquitto/data}"
: "${MQTT_CSS_USER:?}" "${MQTT_CSS_PASSWORD:?}" "${MQTT_ESS_USER:?}" "${MQTT_ESS_PASSWORD:?}" "${MQTT_ESS_TYPE:?}" "${MQTT_ESS_ID:?}"
mkdir -p "$data"
umask 077
rm -f "$data/passwd"
touch "$data/passwd"
mosquitto_passwd -b "$data/passwd" "$MQTT_CSS_USER" "$MQTT_CSS_PASSWORD"
mosquitto_passwd -b "$data/passwd" "$MQTT_ESS_USER" "$MQTT_ESS_PASSWORD"
# An edge node may publish only on its own evt/ topics and read only its own cmd/ topics, as
# on the CSS's embedded broker (iot-2/type/{type}/id/{id}/{cmd|evt}/...).
cat > "$data/acl" <<ACL
user $MQTT_CSS_USER
topic readwrite #

user $MQTT_ESS_USER
topic write iot-2/type/$MQTT_ESS_TYPE/id/$MQTT_ESS_ID/evt/#
topic read iot-2/type/$MQTT_ESS_TYPE/id/$MQTT_ESS_ID/cmd/#
ACL
if id mosquitto >/dev/null 2>&1; then chown -R mosquitto:mosquitto "$data" 2>/dev/null || true; fi
exec mosquitto -c "$conf"
