# LINE steps of e2e/scenario/platforms-genesys.sh (sourced; $psim is the
# LINE simulator, $webhook_url the Tenant's webhook URL).
line_channel=1650000000
line_secret=scenario-line-channel-secret
line_token=scenario-line-channel-access-token
line_user=U4af4980629aabbccddeeff0011223344
p_media=LINE
p_secrets="$line_secret $line_token"
p_sample_sed="s/REPLACE-with-the-channel-secret/$line_secret/; s/REPLACE-with-the-channel-access-token/$line_token/"

line_event() { # JSON fields of /__sim/line/events
  local delivery
  delivery=$(post "$psim/__sim/line/events" "{\"channel_id\":\"$line_channel\",\"user_id\":\"$line_user\",\"display_name\":\"Ana\",$1}") \
    || fail "[line] event not sent"
  [ "$(jqget "d['delivered']" <<<"$delivery")" = True ] || fail "[line] webhook not accepted: $delivery"
}

p_prepare() {
  post "$psim/__sim/line/channels" \
    "{\"channel_id\":\"$line_channel\",\"channel_secret\":\"$line_secret\",\"access_token\":\"$line_token\"}" >/dev/null
  post "$psim/__sim/line/users" "{\"user_id\":\"$line_user\",\"display_name\":\"Ana\",\"language\":\"ja\"}" >/dev/null
}

# The connector registers its webhook itself (PUT .../webhook/endpoint).
p_webhook_ready() {
  [ "$(curl -fsS -H "Authorization: Bearer $line_token" "$psim/v2/bot/channel/webhook/endpoint" \
      | jqget "d['endpoint']")" = "$webhook_url" ]
}

p_guest_text() { line_event "\"text\":\"$1\""; }
p_guest_image() { line_event "\"image_base64\":\"$(base64 -w0 "$1")\",\"mime\":\"image/png\""; }

line_messages() { curl -fsS "$psim/__sim/line/records?kind=sent" | jqget "json.dumps([m for s in d for m in s['messages']])"; }

p_check_sent() { # text image-url prompt label...
  sim_wait "$psim/__sim/line" sent 3 30
  local messages
  messages=$(line_messages)
  python3 - "$messages" "$@" <<'PY' || fail "[line] sent messages: $messages"
import json, sys
m, text, image, prompt, *labels = json.loads(sys.argv[1]), *sys.argv[2:]
assert m[0] == {"type": "text", "text": text} or (m[0]["type"] == "text" and m[0]["text"] == text), m[0]
assert m[1]["type"] == "image" and m[1]["originalContentUrl"] == image and m[1]["previewImageUrl"], m[1]
assert m[2]["type"] == "text" and m[2]["text"] == prompt, m[2]
items = m[2]["quickReply"]["items"]
assert [i["action"]["label"] for i in items] == labels, items
assert all(i["type"] == "action" and i["action"]["type"] == "postback" for i in items), items
PY
}

p_tap_quick_reply() { # label payload
  local data
  data=$(line_messages | jqget "[i['action']['data'] for i in d[2]['quickReply']['items'] if i['action']['label'] == '$1'][0]")
  line_event "\"postback\":$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$data")"
}

p_tampered_webhook() {
  curl -s -o /dev/null -w '%{http_code}' -X POST "$webhook_url" -H 'content-type: application/json' \
    -H 'X-Line-Signature: c2NlbmFyaW8tdGFtcGVyZWQtc2lnbmF0dXJlLTAwMDAwMDA=' \
    -d "{\"destination\":\"Ubot\",\"events\":[{\"type\":\"message\",\"message\":{\"type\":\"text\",\"id\":\"1\",\"text\":\"forged\"},\"source\":{\"type\":\"user\",\"userId\":\"$line_user\"},\"timestamp\":0,\"mode\":\"active\",\"webhookEventId\":\"01FORGED\",\"deliveryContext\":{\"isRedelivery\":false}}]}"
}

# The add-friend QR code of the bot's basic id, linked from the Tenant's
# status (the simulator's channels have the basic id @123abcde).
p_extra_checks() {
  [ "$(tenant_status acme-line links.addFriendQrCode)" = "$webhook_url/qr.svg" ] \
    || fail "[line] status.links.addFriendQrCode: $(tenant_status acme-line links)"
  [ "$(curl -fsS -o /dev/null -w '%{http_code} %{content_type}' "$webhook_url/qr.svg")" = "200 image/svg+xml" ] \
    || fail "[line] qr.svg not served"
  [ "$(curl -fsS "$webhook_url/friend-link" | jqget "d['url']")" = "https://line.me/R/ti/p/%40123abcde" ] \
    || fail "[line] friend-link: $(curl -sS "$webhook_url/friend-link")"
}
