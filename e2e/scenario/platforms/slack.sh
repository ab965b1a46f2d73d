# Slack steps of e2e/scenario/platforms-genesys.sh (sourced; $psim is the
# Slack simulator, $webhook_url the Tenant's Events API and interactivity
# request URL).
slack_signing_secret=scenario-slack-signing-secret-8f2e
slack_bot_token=xoxb-1000-scenario-slack-bot-token
slack_team=T0SCENARIO
slack_user=U0ANA
p_media=Slack
p_secrets="$slack_signing_secret $slack_bot_token"
p_sample_sed="s/REPLACE-with-the-signing-secret/$slack_signing_secret/; s/xoxb-REPLACE-with-the-bot-token/$slack_bot_token/; s/A0REPLACE/A0SIMAPP01/"

slack_deliver() { # control path, JSON fields
  local delivery
  delivery=$(post "$psim/__sim/slack/$1" "{\"url\":\"$webhook_url\",$2}") || fail "[slack] $1 not sent"
  [ "$(jqget "d['status']" <<<"$delivery")" = 200 ] || fail "[slack] $1 not accepted: $delivery"
  printf '%s' "$delivery"
}

p_prepare() {
  post "$psim/__sim/slack/app" "{\"signing_secret\":\"$slack_signing_secret\",\"app_id\":\"A0SIMAPP01\"}" >/dev/null
  post "$psim/__sim/slack/workspaces" "{\"team_id\":\"$slack_team\",\"team_name\":\"ACME Corp\",\"bot_token\":\"$slack_bot_token\"}" >/dev/null
  post "$psim/__sim/slack/users" "{\"team_id\":\"$slack_team\",\"user_id\":\"$slack_user\",\"name\":\"ana\",\"real_name\":\"Ana Lima\",\"locale\":\"pt-BR\"}" >/dev/null
}

# Saving the request URL in the app settings: Slack's url_verification.
p_webhook_ready() {
  local delivery
  delivery=$(post "$psim/__sim/slack/verify" "{\"url\":\"$webhook_url\",\"challenge\":\"scenario-challenge-42\"}") || return 1
  [ "$(jqget "d['status']" <<<"$delivery")" = 200 ] && grep -q scenario-challenge-42 <<<"$delivery"
}

p_guest_text() { slack_deliver events "\"event_id\":\"Ev0SCENARIO1\",\"team_id\":\"$slack_team\",\"user_id\":\"$slack_user\",\"text\":\"$1\"" >/dev/null; }
p_redelivered_text() { p_guest_text "$1"; }
p_guest_image() {
  slack_deliver events "\"team_id\":\"$slack_team\",\"user_id\":\"$slack_user\",\"text\":\"\",\"file\":{\"name\":\"photo.png\",\"mime\":\"image/png\",\"bytes_base64\":\"$(base64 -w0 "$1")\"}" >/dev/null
}

slack_posted() { curl -fsS "$psim/__sim/slack/records?kind=posted"; }

# Agent files are uploaded (files.getUploadURLExternal, upload,
# files.completeUploadExternal); text and buttons are posted.
p_check_sent() { # text image-url prompt label...
  sim_wait "$psim/__sim/slack" posted 2 30
  sim_wait "$psim/__sim/slack" uploaded 1 30
  local posted uploaded
  posted=$(slack_posted)
  uploaded=$(curl -fsS "$psim/__sim/slack/records?kind=uploaded")
  python3 - "$posted" "$uploaded" "$(sha256sum "$work/cdn/${2##*/}" | cut -d' ' -f1)" "$@" <<'PY' \
    || fail "[slack] posted: $posted uploaded: $uploaded"
import json, sys
m, u, sha, text, image, prompt, *labels = json.loads(sys.argv[1]), json.loads(sys.argv[2]), *sys.argv[3:]
assert len({x["channel"] for x in m}) == 1 and m[0]["channel"].startswith("D"), m
assert m[0]["text"] == text, m[0]
assert len(u) == 1 and u[0]["channel"] == m[0]["channel"] and u[0]["sha256"] == sha, u
assert m[1]["text"] == prompt, m[1]
buttons = [e for b in m[1]["blocks"] if b["type"] == "actions" for e in b["elements"]]
assert [b["text"]["text"] for b in buttons] == labels and all(b["type"] == "button" for b in buttons), buttons
PY
}

p_tap_quick_reply() { # label payload
  local action
  action=$(slack_posted | jqget "[e['action_id'] for b in d[1]['blocks'] if b['type'] == 'actions' for e in b['elements'] if e['text']['text'] == '$1'][0]")
  slack_deliver interactions "\"user_id\":\"$slack_user\",\"action_id\":\"$action\"" >/dev/null
}

# A wrong signature now, and a right signature on a request older than
# five minutes (a replay): both 401.
p_tampered_webhook() {
  local body now stale signature code
  body="{\"type\":\"event_callback\",\"team_id\":\"$slack_team\",\"api_app_id\":\"A0SIMAPP01\",\"event_id\":\"Ev0FORGED\",\"event_time\":1,\"event\":{\"type\":\"message\",\"channel_type\":\"im\",\"user\":\"$slack_user\",\"text\":\"forged\",\"channel\":\"D0FORGED\",\"ts\":\"1.000001\"}}"
  now=$(date +%s)
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$webhook_url" -H 'content-type: application/json' \
    -H "X-Slack-Request-Timestamp: $now" -H "X-Slack-Signature: v0=$(printf '0%.0s' $(seq 64))" -d "$body")
  [ "$code" = 401 ] || { echo "$code"; return; }
  stale=$(( now - 360 ))
  signature=$(python3 -c 'import hmac,hashlib,sys; print("v0="+hmac.new(sys.argv[1].encode(), ("v0:"+sys.argv[2]+":"+sys.argv[3]).encode(), hashlib.sha256).hexdigest())' \
    "$slack_signing_secret" "$stale" "$body")
  curl -s -o /dev/null -w '%{http_code}' -X POST "$webhook_url" -H 'content-type: application/json' \
    -H "X-Slack-Request-Timestamp: $stale" -H "X-Slack-Signature: $signature" -d "$body"
}
