# Viber steps of e2e/scenario/platforms-genesys.sh (sourced; $psim is the
# Viber simulator, $webhook_url the Tenant's webhook URL).
viber_token=4453b6ac1234abcd-scenario-viber-auth-token
viber_user='01234567890A=='
p_media=Viber
p_secrets="$viber_token"
p_sample_sed="s/REPLACE-with-the-viber-auth-token/$viber_token/"

viber_callback() { # JSON fields of /__sim/viber/callbacks
  local delivery
  delivery=$(post "$psim/__sim/viber/callbacks" "{\"token\":\"$viber_token\",\"user_id\":\"$viber_user\",\"name\":\"Ana\",$1}") \
    || fail "[viber] callback not sent"
  [ "$(jqget "d['attempts'][-1]['status']" <<<"$delivery")" = 200 ] || fail "[viber] callback not accepted: $delivery"
}

p_prepare() {
  post "$psim/__sim/viber/tokens" "{\"token\":\"$viber_token\"}" >/dev/null
  post "$psim/__sim/viber/users" "{\"token\":\"$viber_token\",\"id\":\"$viber_user\",\"name\":\"Ana\",\"country\":\"UA\",\"language\":\"uk\",\"primary_device_os\":\"Android 14\",\"device_type\":\"Pixel 8\"}" >/dev/null
}

# The connector calls set_webhook when the tenant appears.
p_webhook_ready() {
  [ "$(post "$psim/pa/get_account_info" '{}' -H "X-Viber-Auth-Token: $viber_token" | jqget "d['webhook']")" = "$webhook_url" ]
}

p_guest_text() { viber_callback "\"text\":\"$1\",\"message_token\":5000000000000000001"; }
p_redelivered_text() { p_guest_text "$1"; }
p_guest_image() {
  local url
  url=$(post "$psim/__sim/viber/media" "{\"bytes_base64\":\"$(base64 -w0 "$1")\",\"mime\":\"image/png\"}" | jqget "d['url']")
  viber_callback "\"picture_url\":\"$url\""
}

viber_messages() { curl -fsS "$psim/__sim/viber/records?kind=sent" | jqget "json.dumps([s['message'] for s in d])"; }

p_check_sent() { # text image-url prompt label...
  sim_wait "$psim/__sim/viber" sent 3 30
  local messages
  messages=$(viber_messages)
  python3 - "$messages" "$@" <<'PY' || fail "[viber] sent messages: $messages"
import json, sys
m, text, image, prompt, *labels = json.loads(sys.argv[1]), *sys.argv[2:]
assert all(x["min_api_version"] and x["sender"]["name"] == "ACME Support" for x in m), m
assert m[0]["type"] == "text" and m[0]["text"] == text, m[0]
assert m[1]["type"] == "picture" and m[1]["media"] == image, m[1]
assert m[2]["type"] == "text" and m[2]["text"] == prompt, m[2]
buttons = m[2]["keyboard"]["Buttons"]
assert m[2]["keyboard"]["Type"] == "keyboard" and [b["Text"] for b in buttons] == labels, buttons
assert all(b["ActionType"] == "reply" for b in buttons), buttons
PY
}

# A reply button sends its ActionBody as the guest's text.
p_tap_quick_reply() { # label payload
  local body
  body=$(viber_messages | jqget "[b['ActionBody'] for b in d[2]['keyboard']['Buttons'] if b['Text'] == '$1'][0]")
  viber_callback "\"text\":\"$body\""
}

p_tampered_webhook() {
  curl -s -o /dev/null -w '%{http_code}' -X POST "$webhook_url" -H 'content-type: application/json' \
    -H 'X-Viber-Content-Signature: 0000000000000000000000000000000000000000000000000000000000000000' \
    -d "{\"event\":\"message\",\"timestamp\":1,\"message_token\":42,\"sender\":{\"id\":\"$viber_user\",\"name\":\"Ana\"},\"message\":{\"type\":\"text\",\"text\":\"forged\"}}"
}
